package replay

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// NewPcapng returns an output that writes the replayed frames into a new
// trace on w: filtered, cut (Limit, Duration), re-timed or looped, with
// direction, family and drop counts kept. Nothing is written before
// Start. Close closes c, if not nil, after the trace.
func NewPcapng(w io.Writer, c io.Closer, opts pcapnl.WriterOptions) Output {
	o := &pcapngOut{dst: w, opts: opts}
	o.fileOut = fileOut{flush: o.flush, c: c, name: opts.Format.String()}
	if opts.Compression != pcapnl.None {
		o.name += " " + opts.Compression.String()
	}
	return o
}

type pcapngOut struct {
	fileOut
	dst  io.Writer
	opts pcapnl.WriterOptions
	w    *pcapnl.Writer
	f    pcapnl.Frame
}

func (o *pcapngOut) Start(context.Context) error {
	w, err := pcapnl.NewWriter(o.dst, o.opts)
	o.w = w
	return err
}

func (o *pcapngOut) flush() error {
	if o.w == nil {
		return nil
	}
	return o.w.Close()
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
// report nothing of their own but their name.
type fileOut struct {
	flush func() error
	c     io.Closer // nil for stdout
	name  string    // what is written: text, json, or the trace's format and compression
}

func (fileOut) Begin(Clock)                     {}
func (fileOut) FollowsClock() bool              { return false }
func (fileOut) KernelOnly() bool                { return false }
func (fileOut) Consumers() []imp2.ConsumerStats { return nil }
func (fileOut) Report() Report                  { return nil }
func (o fileOut) Name() string                  { return o.name }

// OutputFile is a file for an output, created (truncated) on its first
// write: an output made before the replay starts destroys nothing when
// the replay cannot start (a bad input, say).
type OutputFile struct {
	Path string
	f    *os.File
	err  error
}

func (f *OutputFile) Write(b []byte) (int, error) {
	if f.f == nil && f.err == nil {
		if f.f, f.err = os.Create(f.Path); f.err != nil {
			f.err = fmt.Errorf("output: %w", f.err)
		}
	}
	if f.err != nil {
		return 0, f.err
	}
	return f.f.Write(b)
}

// Close closes the file, if it was created.
func (f *OutputFile) Close() error {
	if f.f == nil {
		return nil
	}
	return f.f.Close()
}

func (o fileOut) Close() error {
	err := o.flush()
	if o.c != nil {
		if cerr := o.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// NewFile is the output that writes the replay as a file of kind "text",
// "json" (NewText) or "pcapng" (NewPcapng, its format by path's name:
// pcapnl.FormatFor, and compressed by zip), on path, created as the
// replay starts (OutputFile), or on w when path is "-". live follows the
// clock (Timing.Realtime); app names the writer in a trace's header.
func NewFile(kind, path string, w io.Writer, zip pcapnl.Compression, live bool, app string) (Output, error) {
	closer := io.Closer(nil)
	if path != "-" {
		f := &OutputFile{Path: path}
		w, closer = f, f
	}
	switch kind {
	case "text", "json":
		return NewText(w, closer, kind == "json", live), nil
	case "pcapng":
		format, _ := pcapnl.FormatFor(path)
		return NewPcapng(w, closer, pcapnl.WriterOptions{Application: app, Format: format, Compression: zip}), nil
	}
	return nil, fmt.Errorf("no file output %q: want text, json or pcapng", kind)
}
