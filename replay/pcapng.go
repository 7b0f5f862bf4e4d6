package replay

import (
	"context"
	"io"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// NewPcapng returns an output that writes the replayed frames into a new
// trace on w: filtered, cut (Limit, Duration), re-timed or looped, with
// direction, family and drop counts kept. Close closes c, if not nil,
// after the trace.
func NewPcapng(w io.Writer, c io.Closer, opts pcapnl.WriterOptions) (Output, error) {
	pw, err := pcapnl.NewWriter(w, opts)
	if err != nil {
		return nil, err
	}
	return &pcapngOut{w: pw, fileOut: fileOut{flush: pw.Close, c: c}}, nil
}

type pcapngOut struct {
	fileOut
	w *pcapnl.Writer
	f pcapnl.Frame
}

func (o *pcapngOut) Send(frames []pcapnl.Frame, ts []int64) error {
	for i := range frames {
		o.f = frames[i]
		o.f.Time = ts[i]
		if err := o.w.WriteFrame(&o.f); err != nil {
			return err
		}
	}
	return nil
}

// fileOut is what the file outputs share: they write as fast as they can
// with re-timed timestamps, keep every frame, have no consumers and
// report nothing of their own.
type fileOut struct {
	flush func() error
	c     io.Closer // nil for stdout
}

func (fileOut) Start(context.Context) error     { return nil }
func (fileOut) Begin(Clock)                     {}
func (fileOut) FollowsClock() bool              { return false }
func (fileOut) KernelOnly() bool                { return false }
func (fileOut) Consumers() []imp2.ConsumerStats { return nil }
func (fileOut) Report() Report                  { return nil }

func (o fileOut) Close() error {
	err := o.flush()
	if o.c != nil {
		if cerr := o.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
