package icmp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/imp2/imp2/replay"
	"github.com/imp2/imp2/replay/icmp"
)

// Replay a trace's events through the module loaded on this host, into a
// fresh namespace, and verify what the module emitted (root only).
func ExampleNew() {
	timing := replay.DefaultTiming()
	out, err := icmp.New(icmp.Options{Verify: true, VerifyRcvBuf: 16 << 20, VerifyWait: time.Second, Batch: timing.Batch})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := replay.Run(context.Background(), replay.Options{Inputs: []string{"incident.pcapng.zst"}, Timing: timing, Output: out})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Error, s.ExitCode)
}
