package replay

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/pcapnl"
)

// The input side: a goroutine decodes the trace into chunks (frames whose
// Data point into the chunk's own buffer) and queues them for the sender.
// Before the clock starts, the queue is filled up to Options.ReadAhead bytes, so
// that a trace of that size is entirely in memory before the first send
// and decompression never competes with the replay; a larger trace streams
// in behind it. The bound is in bytes of chunk buffers, whatever the frame
// sizes: a frame larger than a chunk gets a buffer of its own size, and one
// that would pass the bound is read only when nothing else is queued, so a
// frame larger than the whole bound goes through alone. A sender that
// finds the queue empty takes the chunk being filled, however small: a
// live stream (a recorder writing into the pipe that is the input) is
// replayed as it arrives, not a chunk at a time.

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
	filter *filter.Filter
	// keep: chunks are never recycled (the sender keeps them for Loops).
	keep bool
	// skipKernel drops all but kernel→user frames (counted in skipped):
	// the netlink output sends only what the kernel side sends, and a
	// frame of unknown direction may not be that.
	skipKernel bool
	max        int // bytes of chunk buffers held (queue and cur) at most

	mu    sync.Mutex
	queue []*chunk // complete chunks, in order
	cur   *chunk   // being filled; after every chunk in queue
	held  int      // bytes of the buffers of queue and cur
	free  []*chunk
	done  bool          // the reader has ended; err is set
	more  chan struct{} // signalled when the queue or cur grows, or done
	space chan struct{} // signalled when the sender takes a chunk

	primed     chan struct{} // closed when the queue is full or the input ended
	primedOnce sync.Once
	stop       atomic.Bool

	err                     error // set with done; nil at a clean end
	read, filtered, skipped atomic.Int64
}

func newInput(r frameSource, f *filter.Filter, readahead int, keep, skipKernel bool) *input {
	in := &input{
		r: r, filter: f, keep: keep, skipKernel: skipKernel,
		max:    max(readahead, 2*chunkBytes),
		more:   make(chan struct{}, 1),
		space:  make(chan struct{}, 1),
		primed: make(chan struct{}),
	}
	in.cur = in.newChunkLocked()
	in.held = cap(in.cur.buf)
	go in.run()
	return in
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (in *input) prime() { in.primedOnce.Do(func() { close(in.primed) }) }

func (in *input) newChunkLocked() *chunk {
	if n := len(in.free); n > 0 {
		c := in.free[n-1]
		in.free = in.free[:n-1]
		c.buf, c.frames = c.buf[:0], c.frames[:0]
		return c
	}
	return &chunk{buf: make([]byte, 0, chunkBytes), frames: make([]pcapnl.Frame, 0, chunkFrames)}
}

// recycle returns a chunk the sender has finished with.
func (in *input) recycle(c *chunk) {
	if in.keep || cap(c.buf) != chunkBytes {
		return
	}
	in.mu.Lock()
	if len(in.free) < 4 {
		in.free = append(in.free, c)
	}
	in.mu.Unlock()
}

func (in *input) run() {
	defer in.prime()
	for !in.stop.Load() {
		fr, err := in.r.Next()
		if err != nil {
			in.mu.Lock()
			if !errors.Is(err, io.EOF) {
				in.err = err
			}
			in.done = true
			in.mu.Unlock()
			wake(in.more)
			return
		}
		in.read.Add(1)
		if !in.filter.Match(&fr) {
			in.filtered.Add(1)
			continue
		}
		if in.skipKernel && fr.Direction != pcapnl.ToUser {
			in.skipped.Add(1)
			continue
		}
		in.add(&fr)
	}
	in.mu.Lock()
	in.done = true
	in.mu.Unlock()
	wake(in.more)
}

// add copies one frame into the current chunk, queueing the chunk first if
// the frame does not fit, and waits while the buffers held would pass
// in.max.
func (in *input) add(fr *pcapnl.Frame) {
	n := len(fr.Data)
	in.mu.Lock()
	for {
		c := in.cur
		if len(c.frames) < cap(c.frames) && len(c.buf)+n <= cap(c.buf) {
			break
		}
		// The buffer the frame needs: a fresh chunk, or, for a frame
		// larger than a chunk, one of its own in place of cur's empty one.
		need, own := chunkBytes, len(c.frames) == 0
		if own {
			need = n - cap(c.buf)
		}
		if in.held+need > in.max && len(in.queue) > 0 {
			in.prime()
			in.mu.Unlock()
			select {
			case <-in.space:
			case <-time.After(100 * time.Millisecond): // re-check stop
			}
			if in.stop.Load() {
				return
			}
			in.mu.Lock()
			continue
		}
		if own { // a frame larger than a chunk gets its own buffer
			in.held += need
			c.buf = make([]byte, 0, n)
			break
		}
		in.queue = append(in.queue, c)
		in.cur = in.newChunkLocked()
		in.held += cap(in.cur.buf)
	}
	c := in.cur
	off := len(c.buf)
	c.buf = append(c.buf, fr.Data...)
	f := *fr
	f.Data = c.buf[off : off+n : off+n]
	c.frames = append(c.frames, f)
	in.mu.Unlock()
	wake(in.more)
}

// next returns the next chunk in order, waiting for one; nil at the end of
// the input (or after close).
func (in *input) next() *chunk {
	for {
		in.mu.Lock()
		var c *chunk
		switch {
		case len(in.queue) > 0:
			c = in.queue[0]
			in.queue[0] = nil
			in.queue = in.queue[1:]
			in.held -= cap(c.buf)
		case len(in.cur.frames) > 0:
			c = in.cur
			in.cur = in.newChunkLocked()
			in.held += cap(in.cur.buf) - cap(c.buf)
		}
		done := in.done
		in.mu.Unlock()
		if c != nil {
			wake(in.space)
			return c
		}
		if done || in.stop.Load() {
			return nil
		}
		<-in.more
	}
}

// waitPrimed waits until the read-ahead is full or the input has ended,
// or until reading stalls (a live stream waiting for its producer): a
// stall of stallWait without a new frame starts the replay with what has
// been read.
func (in *input) waitPrimed() {
	const stallWait = 100 * time.Millisecond
	t := time.NewTicker(stallWait)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-in.primed:
			return
		case <-t.C:
			n := in.read.Load()
			if n == last {
				return
			}
			last = n
		}
	}
}

// close stops the reader goroutine without waiting for it: it may be
// blocked reading a live stream, and the replay must not wait for the next
// frame to end.
func (in *input) close() {
	in.stop.Store(true)
	wake(in.space)
}
