package pcapnl

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// stage is what follows the encoder: the compressor (if any) and the
// underlying writer. It runs in the caller of Writer, or on the goroutine
// of a queue.
type stage struct {
	out           io.Writer
	outF          interface{ Flush() error }
	zw            compressor // nil when uncompressed
	dst           io.Writer  // zw, or out when uncompressed
	framePerFlush bool
	// framesOut counts the frames before the last flush that succeeded:
	// those the underlying writer has accepted whole (Writer.FramesOut).
	framesOut atomic.Uint64
}

func (s *stage) write(b []byte) error {
	if _, err := s.dst.Write(b); err != nil {
		return fmt.Errorf("pcapnl: write: %w", err)
	}
	return nil
}

// compressor is what *zstd.Encoder and *gzip.Writer have in common:
// Flush ends a block (zstd) or makes a sync flush (gzip), after which
// everything written so far decompresses from the output; Close ends the
// stream (frame, gzip member); Reset starts a new one.
type compressor interface {
	io.Writer
	Flush() error
	Close() error
	Reset(io.Writer)
}

// flush ends the current compressed block (or frame) and flushes the
// output.
func (s *stage) flush() error {
	var err error
	if s.zw != nil {
		if s.framePerFlush {
			if err = s.zw.Close(); err == nil {
				s.zw.Reset(s.out)
			}
		} else {
			err = s.zw.Flush()
		}
	}
	if err == nil && s.outF != nil {
		err = s.outF.Flush()
	}
	if err != nil {
		return fmt.Errorf("pcapnl: flush: %w", err)
	}
	return nil
}

// close ends the compressed stream and flushes the output.
func (s *stage) close() error {
	if s.zw != nil {
		if err := s.zw.Close(); err != nil {
			return fmt.Errorf("pcapnl: compressor close: %w", err)
		}
	}
	if s.outF != nil {
		if err := s.outF.Flush(); err != nil {
			return fmt.Errorf("pcapnl: flush: %w", err)
		}
	}
	return nil
}

// QueueStats describe the queue of WriterOptions.Queue.
type QueueStats struct {
	Bytes     int           // capacity: chunks × chunk size (a chunk may pass its size by one block)
	MaxQueued int           // most bytes waiting for the goroutine at once
	Waits     uint64        // times WriteFrame waited for a free chunk
	WaitTime  time.Duration // how long in all
}

// Chunk sizes of a queue: large enough that the hand-over (a channel send
// and, when the goroutine sleeps, a wake-up) is rare, once per a few
// thousand frames, and small enough that the few chunks a queue that keeps
// up cycles through stay in the cache. The kernel's receive queue shares
// that cache: against imp2-record's 1 MiB chunks, 128 KiB ones cut the
// CPU per frame of its receive thread by 4-9% (cmd/record's
// BenchmarkVsSink, two runs of 7 rounds); 256 KiB ones, half the
// wake-ups, took the compressing goroutine 14-18 ns less per frame than
// 128 KiB and the receive thread no more (2-3% of the whole, two runs of
// 10 and 12 interleaved rounds on a host with 4 MiB of L2 a core).
const (
	minChunk = 64 << 10
	maxChunk = 256 << 10
)

// queue carries encoded pcapng in chunks from the Writer to a goroutine
// running the stage. The chunks cycle between free and full, so the steady
// state allocates nothing. The free chunks are a stack: the one written
// last, still in the cache, is filled next, so that a queue that keeps up
// encodes into the same few chunks. As a FIFO, every chunk of a 32 MiB
// queue went cold before its turn came again: record's BenchmarkTraceWrite
// spent 58 ns of the receive loop per frame with it, 48 with the stack.
type queue struct {
	st        *stage
	full      chan *chunk
	freeMu    sync.Mutex
	freeCond  sync.Cond
	free      []*chunk
	done      chan struct{}
	cur       *chunk // being filled, owned by the Writer
	chunkSize int

	closed bool         // close has run
	queued atomic.Int64 // bytes handed over and not yet written
	failed atomic.Bool  // err is set
	err    error
	stats  QueueStats // under Writer.mu
}

type chunk struct {
	b       []byte
	flushes []flushMark   // where in b the stage flushes
	written chan struct{} // if not nil, closed once the chunk is out
}

// flushMark is a flush point in a chunk: after its first off bytes, which
// end the Writer's first frames frames.
type flushMark struct {
	off    int
	frames uint64
}

// newQueue makes a queue of about size bytes whose chunks also hold one
// block of up to maxBlock bytes past their nominal size.
func newQueue(st *stage, size, maxBlock int) *queue {
	cs := min(max(size/8, minChunk), maxChunk)
	n := max(size/cs, 2)
	q := &queue{st: st, full: make(chan *chunk, n), done: make(chan struct{}), chunkSize: cs}
	q.freeCond.L = &q.freeMu
	q.stats.Bytes = n * cs
	for range n {
		q.free = append(q.free, &chunk{b: make([]byte, 0, cs+maxBlock), flushes: make([]flushMark, 0, 16)})
	}
	go q.run()
	return q
}

// take makes a free chunk current, starting it with b, and returns its
// buffer.
func (q *queue) take(b []byte) []byte {
	q.freeMu.Lock()
	if len(q.free) == 0 {
		t0 := time.Now()
		for len(q.free) == 0 {
			q.freeCond.Wait()
		}
		q.stats.Waits++
		q.stats.WaitTime += time.Since(t0)
	}
	c := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	q.freeMu.Unlock()
	c.flushes, c.written = c.flushes[:0], nil
	q.cur = c
	return append(c.b[:0], b...)
}

// markFlush asks the goroutine to flush after the first n bytes of the
// current chunk, which end the Writer's first frames frames.
func (q *queue) markFlush(n int, frames uint64) {
	q.cur.flushes = append(q.cur.flushes, flushMark{n, frames})
}

// handOver queues the current chunk, holding b, and returns the buffer of
// the next one; written, if not nil, is closed when b is out.
func (q *queue) handOver(b []byte, written chan struct{}) []byte {
	q.push(b, written)
	return q.take(nil)
}

// close queues the current chunk, holding b, and waits until the goroutine
// has written everything.
func (q *queue) close(b []byte) {
	if q.closed {
		return
	}
	q.closed = true
	q.push(b, nil)
	close(q.full)
	<-q.done
}

func (q *queue) push(b []byte, written chan struct{}) {
	c := q.cur
	c.b, c.written = b, written
	if n := q.queued.Add(int64(len(b))); int(n) > q.stats.MaxQueued {
		q.stats.MaxQueued = int(n)
	}
	q.full <- c // never blocks: there are as many slots as chunks
}

// error returns the first error of the goroutine, or nil.
func (q *queue) error() error {
	if q.failed.Load() {
		return q.err
	}
	return nil
}

func (q *queue) run() {
	defer close(q.done)
	for c := range q.full {
		if !q.failed.Load() {
			if err := q.emit(c); err != nil {
				q.err = err
				q.failed.Store(true)
			}
		}
		q.queued.Add(-int64(len(c.b)))
		if c.written != nil {
			close(c.written)
		}
		q.freeMu.Lock()
		q.free = append(q.free, c)
		q.freeCond.Signal()
		q.freeMu.Unlock()
	}
}

func (q *queue) emit(c *chunk) error {
	start := 0
	for _, m := range c.flushes {
		if err := q.st.write(c.b[start:m.off]); err != nil {
			return err
		}
		if err := q.st.flush(); err != nil {
			return err
		}
		q.st.framesOut.Store(m.frames)
		start = m.off
	}
	if start < len(c.b) {
		return q.st.write(c.b[start:])
	}
	return nil
}
