package record_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/record"
)

// Record three events from a user-space producer (an imp2.Server, where a
// deployment would have the module) into a trace file.
func ExampleRun() {
	srv, err := imp2.Listen(imp2.ServerConfig{AllowUnprivileged: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "record-example-")
	defer os.RemoveAll(dir)

	o := record.DefaultOptions(filepath.Join(dir, "trace.pcapng.zst"))
	o.Family, o.Peer, o.Count = imp2.UserSockFamily, srv.PortID(), 3
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		srv.WaitConsumers(ctx, 1)
		for seq := uint32(1); seq <= 3; seq++ {
			srv.Send(imp2.AppendEventMessage(nil, seq, imp2.Event{Src: netip.MustParseAddr("192.0.2.1"), Dest: netip.MustParseAddr("192.0.2.2")}))
		}
	}()
	s, err := record.Run(ctx, o)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Registration and its ack, 3 events, the statistics request and
	// reply, IMP2_CLOSE.
	fmt.Println(s.Stop, s.Events, s.Frames, s.Drops.Lost)
	// Output: count 3 8 0
}
