package pcapnl

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestQueueSameBytes: the queue moves the compression to another
// goroutine, not the flush points: after Flush, the output is byte for
// byte what the Writer without a queue produces.
func TestQueueSameBytes(t *testing.T) {
	frames := floodTrace(20000, 3)
	for _, opts := range []WriterOptions{
		{FlushInterval: -1},
		{FlushInterval: -1, FlushBytes: 5000},
		{FlushInterval: -1, FlushBytes: 5000, FramePerFlush: true},
		{FlushInterval: -1, Compression: None},
	} {
		var want, got bytes.Buffer
		for _, q := range []struct {
			buf   *bytes.Buffer
			queue int
		}{{&want, 0}, {&got, 64 << 10}} {
			opts.Queue = q.queue
			w, err := NewWriter(q.buf, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i := range frames {
				if err := w.WriteFrame(&frames[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if q.queue > 0 && w.QueueStats().Bytes != 128<<10 {
				t.Errorf("queue of %d bytes: %+v, want two chunks of 64 KiB", q.queue, w.QueueStats())
			}
			w.Close()
		}
		if !bytes.Equal(want.Bytes()[:want.Len()-200], got.Bytes()[:want.Len()-200]) {
			t.Errorf("%+v: output with a queue differs from the one without", opts)
		}
	}
}

// heldWriter is an output whose writes wait while hold is locked.
type heldWriter struct {
	hold sync.Mutex
	buf  bytes.Buffer
}

func (h *heldWriter) Write(p []byte) (int, error) {
	h.hold.Lock()
	defer h.hold.Unlock()
	return h.buf.Write(p)
}

// TestQueueWaits: with the output held, WriteFrame fills the queue and
// then waits; the stats say so, and nothing is lost once it moves again.
func TestQueueWaits(t *testing.T) {
	frames := floodTrace(30000, 4)
	out := &heldWriter{}
	const snap = 300
	w, err := NewWriter(out, WriterOptions{Compression: None, FlushInterval: -1, Queue: 128 << 10, SnapLen: snap})
	if err != nil {
		t.Fatal(err)
	}
	out.hold.Lock()
	done := make(chan error)
	go func() {
		for i := range frames {
			if err := w.WriteFrame(&frames[i]); err != nil {
				done <- err
				return
			}
		}
		done <- w.Close()
	}()
	select {
	case err := <-done:
		t.Fatalf("wrote %d frames (3.5 MB) through a 128 KiB queue to a held output: %v", len(frames), err)
	case <-time.After(50 * time.Millisecond):
	}
	out.hold.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := w.QueueStats()
	if most := st.Bytes + 2*(snap+64); st.Waits == 0 || st.WaitTime <= 0 || st.MaxQueued == 0 || st.MaxQueued > most {
		t.Errorf("queue stats %+v: want waits, and at most %d bytes queued", st, most)
	}
	got, _, err := readAll(t, bytes.NewReader(out.buf.Bytes()))
	if err != nil || len(got) != len(frames) {
		t.Fatalf("read back %d of %d frames: %v", len(got), len(frames), err)
	}
	for i := range got {
		sameFrame(t, i, got[i], frames[i])
	}
}

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

// TestQueueError: an output error on the queue's goroutine comes back
// from a later WriteFrame, and from Flush and Close, which do not hang.
func TestQueueError(t *testing.T) {
	frames := floodTrace(20000, 5)
	w, err := NewWriter(&failingWriter{n: 100 << 10}, WriterOptions{Compression: None, FlushInterval: -1, Queue: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; werr == nil; i++ {
		if i == len(frames) {
			t.Fatal("no WriteFrame failed")
		}
		werr = w.WriteFrame(&frames[i])
	}
	if !errors.Is(werr, errDiskFull) {
		t.Errorf("WriteFrame: %v, want the output's error", werr)
	}
	if err := w.Flush(); !errors.Is(err, errDiskFull) {
		t.Errorf("Flush: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("second Close: %v", err)
	}
}
