package pcapnl

import (
	"bytes"
	"errors"
	"testing"
)

// TestWriteFrames: batches written at once make the same file as their
// frames written one by one, with and without a queue; and
// after an output error WriteFrames says how many of its frames it wrote
// before the failing one.
func TestWriteFrames(t *testing.T) {
	frames := append(floodTrace(5000, 9), oddFrames()...)
	for _, opts := range []WriterOptions{{FlushInterval: -1}, {FlushInterval: -1, Queue: 256 << 10}} {
		want := writeTrace(t, frames, opts)
		var buf bytes.Buffer
		w, err := NewWriter(&buf, opts)
		if err != nil {
			t.Fatal(err)
		}
		for rest := frames; len(rest) > 0; {
			k := min(len(rest), 128)
			if n, err := w.WriteFrames(rest[:k]); n != k || err != nil {
				t.Fatalf("WriteFrames of %d: %d, %v", k, n, err)
			}
			rest = rest[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// Only the statistics block's timestamp (the time of Close)
		// may differ: compare the sizes and the frames read back.
		if len(buf.Bytes()) != len(want) {
			t.Fatalf("queue %d: %d bytes in batches, %d one by one", opts.Queue, buf.Len(), len(want))
		}
		got, _, err := readAll(t, &buf)
		if err != nil || len(got) != len(frames) {
			t.Fatalf("queue %d: read back %d of %d frames: %v", opts.Queue, len(got), len(frames), err)
		}
		for i := range got {
			sameFrame(t, i, got[i], frames[i])
		}
	}

	w, err := NewWriter(&failingWriter{n: 100 << 10}, WriterOptions{Compression: None, FlushInterval: -1, FlushBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.WriteFrames(frames)
	if !errors.Is(err, errDiskFull) || n == 0 || n >= len(frames) {
		t.Fatalf("WriteFrames into a full disk: %d of %d, %v; want some written, then the output's error", n, len(frames), err)
	}
	if m, err := w.WriteFrames(frames[:1]); m != 0 || !errors.Is(err, errDiskFull) {
		t.Errorf("WriteFrames after the error: %d, %v; want 0 and the error", m, err)
	}
	w.Close()
}
