package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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

func (o *pcapngOut) Start(ctx context.Context) error {
	if err := o.open(ctx); err != nil {
		return err
	}
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

// OutputFile is a file for an output, created (truncated) as the output
// starts (Open) or on its first write: an output made before the replay
// starts destroys nothing when the replay cannot start (a bad input, say).
// It is opened write-only (pcapnl.OpenOutput), so that a FIFO whose reader
// exits fails the next write with EPIPE instead of blocking for ever.
type OutputFile struct {
	Path string
	f    *os.File
	err  error
	ctx  context.Context
	stop func() bool // the AfterFunc that unblocks writes once ctx ends
}

// Open creates the file, unless done already. Until ctx ends: a FIFO's
// open waits for a reader, which an interrupt must not wait for, and
// afterwards a write blocked on a full pipe (a reader that stopped
// reading) returns once ctx ends, with an error that is ctx's, so that
// the replay ends as interrupted.
func (f *OutputFile) Open(ctx context.Context) error {
	if f.f != nil || f.err != nil {
		return f.err
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		file, err := pcapnl.OpenOutput(f.Path)
		ch <- opened{file, err}
	}()
	select {
	case o := <-ch:
		f.f, f.err = o.f, o.err
	case <-ctx.Done():
		f.err = fmt.Errorf("interrupted while opening %s (a FIFO waits for a reader): %w", f.Path, ctx.Err())
		go func() { // the open still blocks; close what it returns, if ever
			if o := <-ch; o.f != nil {
				o.f.Close()
			}
		}()
		return f.err
	}
	if f.err != nil {
		f.err = fmt.Errorf("output: %w", f.err)
		return f.err
	}
	f.ctx = ctx
	// Only pollable files (FIFOs, sockets) take a deadline; a regular
	// file's writes do not block on a reader and finish as they are.
	f.stop = context.AfterFunc(ctx, func() { f.f.SetWriteDeadline(time.Unix(1, 0)) })
	return nil
}

func (f *OutputFile) Write(b []byte) (int, error) {
	if f.f == nil && f.err == nil {
		f.Open(context.Background())
	}
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.f.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && f.ctx.Err() != nil {
		err = fmt.Errorf("output %s: %w", f.Path, f.ctx.Err())
	}
	return n, err
}

// Close closes the file, if it was created.
func (f *OutputFile) Close() error {
	if f.f == nil {
		return nil
	}
	f.stop()
	return f.f.Close()
}

// WritesTo reports whether an output path goes to w: "-", or the file w
// is (same device and inode: /dev/stdout, or the file stdout was
// redirected to). Opened again, that file would have an offset of its
// own, and what else goes to w (a summary) would overwrite the output.
func WritesTo(path string, w io.Writer) bool {
	if path == "-" {
		return true
	}
	wi, pi := stat(w), os.FileInfo(nil)
	if wi != nil {
		pi, _ = os.Stat(path)
	}
	return pi != nil && os.SameFile(wi, pi)
}

// open opens the output's file, if it has one (OutputFile), as it starts.
func (o fileOut) open(ctx context.Context) error {
	if f, ok := o.c.(*OutputFile); ok {
		return f.Open(ctx)
	}
	return nil
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
// replay starts (OutputFile), or on w when path is "-" or names w's own
// file (WritesTo). live follows the clock (Timing.Realtime); app names the
// writer in a trace's header.
func NewFile(kind, path string, w io.Writer, zip pcapnl.Compression, live bool, app string) (Output, error) {
	closer := io.Closer(nil)
	if !WritesTo(path, w) {
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
