//go:build linux

package main

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/pcapnl"
)

type nullOut struct{ n int }

func (o *nullOut) start(context.Context) error            { return nil }
func (o *nullOut) send(f []pcapnl.Frame, _ []int64) error { o.n += len(f); return nil }
func (o *nullOut) realtime() bool                         { return true }
func (o *nullOut) skipKernel() bool                       { return false }
func (o *nullOut) consumers() []imp2.ConsumerStats        { return nil }
func (o *nullOut) close() error                           { return nil }

// The send loop allocates nothing per frame, paced (timing errors recorded)
// or at top speed; so does the text formatter.
func TestPlayNoAlloc(t *testing.T) {
	c := &chunk{}
	for i := range 256 {
		c.frames = append(c.frames, pcapnl.Frame{Time: t0 + int64(i), Family: 31, Data: eventFrame(uint32(i))})
	}
	for _, top := range []bool{false, true} {
		r := newReplayer(timing{speed: 1, wait: true, topspeed: top, batch: 64, spin: -1}, &input{}, &nullOut{}, new(atomic.Bool))
		r.clock = pace.NewClock()
		r.w = pace.NewWaiter(r.clock, -1)
		r.t0 = t0
		if n := testing.AllocsPerRun(20, func() { r.play(c) }); n != 0 {
			t.Errorf("topspeed %v: %v allocations per chunk", top, n)
		}
	}
	o := newTextOut(nil, nil, true, false)
	fr := c.frames[3]
	if n := testing.AllocsPerRun(100, func() { o.line = o.format(o.line[:0], &fr, t0) }); n != 0 {
		t.Errorf("json format: %v allocations per frame", n)
	}
}
