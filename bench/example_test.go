package bench_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/results"
)

// A sweep of the user-space emulation: one step, one sample (root and
// network namespaces needed, so this example is compiled, not run).
func ExampleRun() {
	o := bench.Options{
		Source:   results.SourceEmu,
		Rates:    []int{1000},
		RcvBufs:  []int{212992},
		Delays:   []time.Duration{0},
		Duration: 200 * time.Millisecond,
		Reps:     1,
		Progress: os.Stderr,
	}
	run, err := bench.Run(context.Background(), o)
	if err != nil {
		fmt.Println(err)
		return
	}
	st := run.Steps[0]
	fmt.Printf("%s: %.0f pps, %.1f%% delivered\n", st.Key(), st.Samples[0].AchievedPPS, 100*st.Samples[0].DeliveryRatio)
}
