//go:build linux

package nflog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
)

// BenchmarkDrain measures the reader alone: a flood fills an unread
// receive queue, then the queue is drained and timed (pkt/s per logged
// packet, allocs per Read). The kernel's default batching holds its last
// partial datagram for the 1 s flush timer, so the timing stops 50
// packets short of the count.
func BenchmarkDrain(b *testing.B) {
	const count = 100_000
	for _, q := range []uint32{1, 0} {
		b.Run(fmt.Sprintf("qthresh=%d", q), func(b *testing.B) {
			b.ReportAllocs()
			var pps float64
			for range b.N {
				b.StopTimer()
				top, err := netns.New(context.Background(), "imp2t")
				if err != nil {
					b.Fatal(err)
				}
				var c *Conn
				err = AddRule(context.Background(), top.Dst, group)
				if err == nil {
					err = top.Dst.Do(func() (err error) { c, err = Dial(Config{Group: group, QThresh: q, RcvBuf: 256 << 20}); return err })
				}
				var f *flood.Flood
				if err == nil {
					err = top.Src.Do(func() (err error) {
						f, err = flood.New(flood.Config{Dst: netns.DstAddr, Count: count, Duration: 30 * time.Second})
						return err
					})
				}
				if err != nil {
					top.Close()
					b.Fatal(err)
				}
				f.Run(context.Background())
				f.Close()
				time.Sleep(200 * time.Millisecond)
				got := 0
				fn := func(*Packet) { got++ }
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b.StartTimer()
				t0 := time.Now()
				for got < count-50 {
					if _, err := c.Read(fn); err != nil {
						b.Fatalf("after %d packets: %v", got, err)
					}
				}
				pps += float64(got) / time.Since(t0).Seconds()
				b.StopTimer()
				c.Close()
				top.Close()
			}
			b.ReportMetric(pps/float64(b.N), "pkt/s")
		})
	}
}
