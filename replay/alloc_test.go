package replay

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/pcapnl"
)

const t0 = int64(1_700_000_000_000_000_000)

// eventFrame is an extended imp2 event as the module sends it.
func eventFrame(seq uint32) []byte {
	return imp2.AppendEventMessage(nil, seq, imp2.Event{
		Src: netip.AddrFrom4([4]byte{10, 0, byte(seq >> 8), byte(seq)}), Dest: netip.MustParseAddr("10.9.9.9"),
		Extended: true, TimeNs: uint64(seq) * 1000, ICMPType: 8, ICMPSeq: uint16(seq), Flags: imp2.EventFlagICMP, IPLen: 84,
	})
}

type nullOut struct{ n int }

func (o *nullOut) Start(context.Context) error            { return nil }
func (o *nullOut) Begin(Clock)                            {}
func (o *nullOut) Send(f []pcapnl.Frame, _ []int64) error { o.n += len(f); return nil }
func (o *nullOut) FollowsClock() bool                     { return true }
func (o *nullOut) KernelOnly() bool                       { return false }
func (o *nullOut) Consumers() []imp2.ConsumerStats        { return nil }
func (o *nullOut) Close() error                           { return nil }
func (o *nullOut) Report() Report                         { return nil }
func (o *nullOut) Name() string                           { return "null" }

// The send loop allocates nothing per frame, paced (timing errors recorded)
// or at top speed; so does the text formatter.
func TestPlayNoAlloc(t *testing.T) {
	c := &chunk{}
	for i := range 256 {
		c.frames = append(c.frames, pcapnl.Frame{Time: t0 + int64(i), Family: 31, Data: eventFrame(uint32(i))})
	}
	for _, top := range []bool{false, true} {
		tm := DefaultTiming()
		tm.TopSpeed, tm.Spin = top, -1
		r := newReplayer(timing{Timing: tm, wait: true}, &input{}, &nullOut{}, new(atomic.Bool))
		r.clock = pace.NewClock()
		r.w = pace.NewWaiter(r.clock, -1)
		r.t0 = t0
		n := testing.AllocsPerRun(20, func() { r.play(c) })
		t.Logf("topspeed %v: %v allocations per chunk of %d frames", top, n, len(c.frames))
		if n != 0 {
			t.Errorf("topspeed %v: %v allocations per chunk", top, n)
		}
	}
	o := newTextOut(nil, nil, true, false)
	fr := c.frames[3]
	n := testing.AllocsPerRun(100, func() { o.line = o.format(o.line[:0], &fr, t0) })
	t.Logf("json format: %v allocations per frame", n)
	if n != 0 {
		t.Errorf("json format: %v allocations per frame", n)
	}
}

// BenchmarkPlay is the send loop's cost per frame at top speed into an
// output that does nothing.
func BenchmarkPlay(b *testing.B) {
	c := &chunk{}
	for i := range 256 {
		c.frames = append(c.frames, pcapnl.Frame{Time: t0 + int64(i), Family: 31, Data: eventFrame(uint32(i))})
	}
	tm := DefaultTiming()
	tm.TopSpeed, tm.Spin = true, -1
	r := newReplayer(timing{Timing: tm, wait: true}, &input{}, &nullOut{}, new(atomic.Bool))
	r.clock = pace.NewClock()
	r.w = pace.NewWaiter(r.clock, -1)
	r.t0 = t0
	b.ReportAllocs()
	for b.Loop() {
		r.play(c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(c.frames)), "ns/frame")
}
