package replay_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/replay"
)

// A trace of three events, re-timed at 1000 frames per second and written
// as JSON lines; only the events from 10.0.0.0/8 pass the filter.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "replay-example")
	defer os.RemoveAll(dir)
	trace := filepath.Join(dir, "in.pcapng")
	out, _ := os.Create(trace)
	w, _ := pcapnl.NewWriter(out, pcapnl.WriterOptions{Compression: pcapnl.None})
	for i, src := range []string{"10.0.0.1", "192.0.2.1", "10.0.0.2"} {
		ev := imp2.Event{Src: netip.MustParseAddr(src), Dest: netip.MustParseAddr("10.9.9.9")}
		w.WriteFrame(&pcapnl.Frame{Time: 1_700_000_000e9 + int64(i)*1e9, Family: imp2.DefaultFamily,
			Direction: pcapnl.ToUser, Data: imp2.AppendEventMessage(nil, uint32(i+1), ev)})
	}
	w.Close()
	out.Close()

	f, _ := filter.Parse("type=event src=10.0.0.0/8")
	timing := replay.DefaultTiming()
	timing.PPS = 1000
	s, err := replay.Run(context.Background(), replay.Options{
		Inputs: []string{trace}, Filter: f, Timing: timing,
		Output: replay.NewText(os.Stdout, nil, true, false),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sent", s.FramesSent, "filtered", s.FramesFiltered, "exit", s.ExitCode)
	// Output:
	// {"time":"2023-11-14T22:13:20.000000000Z","dir":"user","family":31,"type":"IMP2_K_MSG","len":24,"seq":1,"pid":0,"src":"10.0.0.1","dest":"10.9.9.9"}
	// {"time":"2023-11-14T22:13:20.001000000Z","dir":"user","family":31,"type":"IMP2_K_MSG","len":24,"seq":3,"pid":0,"src":"10.0.0.2","dest":"10.9.9.9"}
	// sent 2 filtered 1 exit 0
}
