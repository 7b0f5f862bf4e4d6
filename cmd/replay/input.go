package main

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/imp2/imp2/pcapnl"
)

// The input side: a goroutine decodes the trace into chunks (frames whose
// Data point into the chunk's own buffer) and hands them to the sender
// over a channel. Before the clock starts, the channel is filled up to
// -readahead bytes, so that a trace of that size is entirely in memory
// before the first send and decompression never competes with the
// replay; a larger trace streams in behind it.

const (
	chunkBytes  = 256 << 10
	chunkFrames = 4096
)

type chunk struct {
	buf    []byte
	frames []pcapnl.Frame
}

// input reads and filters a trace.
type input struct {
	r      frameSource
	filter *filter
	// keep: chunks are never recycled (the sender keeps them for -loop).
	keep bool

	full   chan *chunk   // decoded chunks, in order; closed at the end
	free   chan *chunk   // chunks the sender is done with
	primed chan struct{} // closed when full is full or the input ended
	stop   atomic.Bool

	// skipKernel drops user→kernel frames (counted in skipped): -to
	// netlink sends only what the kernel side sends.
	skipKernel bool

	err                     error // set before full is closed; nil at a clean end
	read, filtered, skipped atomic.Int64
}

func newInput(r frameSource, f *filter, readahead int, keep, skipKernel bool) *input {
	n := max(readahead/chunkBytes, 2)
	in := &input{
		r: r, filter: f, keep: keep, skipKernel: skipKernel,
		full:   make(chan *chunk, n),
		free:   make(chan *chunk, n+2),
		primed: make(chan struct{}),
	}
	go in.run()
	return in
}

func (in *input) newChunk() *chunk {
	if !in.keep {
		select {
		case c := <-in.free:
			c.buf, c.frames = c.buf[:0], c.frames[:0]
			return c
		default:
		}
	}
	return &chunk{buf: make([]byte, 0, chunkBytes), frames: make([]pcapnl.Frame, 0, chunkFrames)}
}

// recycle returns a chunk the sender has finished with.
func (in *input) recycle(c *chunk) {
	if in.keep {
		return
	}
	select {
	case in.free <- c:
	default:
	}
}

func (in *input) run() {
	defer close(in.full)
	primed := false
	prime := func() {
		if !primed {
			primed = true
			close(in.primed)
		}
	}
	defer prime()
	c := in.newChunk()
	send := func() {
		if len(c.frames) == 0 {
			return
		}
		if !primed && len(in.full) == cap(in.full) {
			prime()
		}
		in.full <- c
		c = in.newChunk()
	}
	for !in.stop.Load() {
		fr, err := in.r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				in.err = err
			}
			break
		}
		in.read.Add(1)
		if !in.filter.match(&fr) {
			in.filtered.Add(1)
			continue
		}
		if in.skipKernel && fr.Direction == pcapnl.ToKernel {
			in.skipped.Add(1)
			continue
		}
		n := len(fr.Data)
		if len(c.frames) == cap(c.frames) || (len(c.buf)+n > cap(c.buf) && len(c.frames) > 0) {
			send()
		}
		if n > cap(c.buf) { // a frame larger than a chunk gets its own buffer
			c.buf = make([]byte, 0, n)
		}
		off := len(c.buf)
		c.buf = append(c.buf, fr.Data...)
		fr.Data = c.buf[off : off+n : off+n]
		c.frames = append(c.frames, fr)
	}
	send()
}

// close stops the reader goroutine and waits for it to end.
func (in *input) close() {
	in.stop.Store(true)
	for c := range in.full {
		_ = c
	}
}
