//go:build linux

package nflog_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/nflog"
)

// Example puts the load path together: topology, NFLOG rule and consumer
// in the destination namespace, a paced flood from the source one, and
// cleanup on every exit path including Ctrl-C.
func Example() {
	netns.Cleanup(netns.DefaultPrefix) // what killed runs left
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	top, err := netns.New(ctx, netns.DefaultPrefix)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer top.Close()
	context.AfterFunc(ctx, func() { top.Close() }) // Ctrl-C while running

	if err := nflog.AddRule(ctx, top.Dst, 5); err != nil {
		fmt.Println(err)
		return
	}
	var c *nflog.Conn
	if err := top.Dst.Do(func() (err error) { c, err = nflog.Dial(nflog.Config{Group: 5, QThresh: 1}); return err }); err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	var f *flood.Flood
	err = top.Src.Do(func() (err error) {
		f, err = flood.New(flood.Config{Dst: netns.DstAddr, Rate: 10_000, Count: 20_000, Duration: 2 * time.Second})
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()

	go func() {
		for {
			_, err := c.Read(func(p *nflog.Packet) { _ = p.Recv - p.Sched /* record */ })
			if err != nil && err != nflog.ErrOverrun {
				return
			}
		}
	}()
	res, err := f.Run(ctx)
	fmt.Println(res.Sent, err)
	time.Sleep(100 * time.Millisecond)
	m, _ := c.MemInfo()
	fmt.Println(c.Stats().Packets, c.Stats().SeqLost, m.Drops)
}
