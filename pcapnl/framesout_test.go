package pcapnl

import (
	"bytes"
	"fmt"
	"testing"
)

// fullDisk keeps what it accepts, as a file on a filesystem with room
// bytes left: a write that does not fit is cut there and fails.
type fullDisk struct {
	room int
	bytes.Buffer
}

func (d *fullDisk) Write(p []byte) (int, error) {
	n := min(len(p), d.room)
	d.room -= n
	d.Buffer.Write(p[:n])
	if n < len(p) {
		return n, errDiskFull
	}
	return n, nil
}

// TestFramesOut: after an output error FramesOut counts exactly the
// frames a reader finds in the zstd output (at most those in an
// uncompressed one), fewer than Frames; after a clean Close, all of them.
func TestFramesOut(t *testing.T) {
	frames := floodTrace(40000, 7)
	for _, comp := range []Compression{Zstd, None} {
		for _, queue := range []int{0, 256 << 10} {
			t.Run(fmt.Sprintf("compression=%d,queue=%d", comp, queue), func(t *testing.T) {
				disk := &fullDisk{room: 200 << 10}
				w, err := NewWriter(disk, WriterOptions{Compression: comp, FlushInterval: -1, Queue: queue})
				if err != nil {
					t.Fatal(err)
				}
				var werr error
				for i := 0; i < len(frames) && werr == nil; i++ {
					werr = w.WriteFrame(&frames[i])
				}
				if werr == nil {
					werr = w.Close()
				}
				w.Close()
				if werr == nil {
					t.Fatal("the full disk failed no write")
				}
				got, _, _ := readAll(t, bytes.NewReader(disk.Bytes()))
				written, _ := w.Frames()
				out := w.FramesOut()
				t.Logf("frames written %d, out %d, readable %d", written, out, len(got))
				if out == 0 || out >= written || out > uint64(len(got)) || (comp == Zstd && out != uint64(len(got))) {
					t.Errorf("FramesOut %d of %d written; a reader finds %d", out, written, len(got))
				}
			})
		}
	}
	w, err := NewWriter(&bytes.Buffer{}, WriterOptions{Queue: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		w.WriteFrame(&frames[i])
	}
	if err := w.Close(); err != nil || w.FramesOut() != uint64(len(frames)) {
		t.Errorf("after Close (%v): FramesOut %d, want %d", err, w.FramesOut(), len(frames))
	}
}
