package main

import (
	"context"
	"io"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// pcapngOut rewrites the replayed frames into a new trace: filtered, cut
// (-limit, -duration), re-timed (-speed, -pps, -loop) or looped, with
// direction, family and drop counts kept.
type pcapngOut struct {
	w *pcapnl.Writer
	c io.Closer // nil for stdout
	f pcapnl.Frame
}

func newPcapngOut(w io.Writer, c io.Closer, opts pcapnl.WriterOptions) (*pcapngOut, error) {
	pw, err := pcapnl.NewWriter(w, opts)
	if err != nil {
		return nil, err
	}
	return &pcapngOut{w: pw, c: c}, nil
}

func (o *pcapngOut) start(context.Context) error { return nil }
func (o *pcapngOut) realtime() bool              { return false }
func (o *pcapngOut) skipKernel() bool            { return false }
func (o *pcapngOut) consumers() []imp2.ConsumerStats {
	return nil
}

func (o *pcapngOut) send(frames []pcapnl.Frame, ts []int64) error {
	for i := range frames {
		o.f = frames[i]
		o.f.Time = ts[i]
		if err := o.w.WriteFrame(&o.f); err != nil {
			return err
		}
	}
	return nil
}

func (o *pcapngOut) close() error {
	err := o.w.Close()
	if o.c != nil {
		if cerr := o.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
