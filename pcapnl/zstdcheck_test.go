package pcapnl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestZstdChecksumDamaged cuts or damages the 4-byte checksum that ends
// the zstd stream: every frame, the statistics block after them included,
// must still come out, and then an error that says what is wrong.
func TestZstdChecksumDamaged(t *testing.T) {
	frames := floodTrace(20000, 11)
	for _, opts := range []WriterOptions{{}, {FramePerFlush: true}} {
		data := writeTrace(t, frames, opts)
		_, intact, err := readAll(t, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			in   []byte
			want error
			msg  string
		}{
			{"last-byte-cut", data[:len(data)-1], ErrTruncated, "checksum"},
			{"checksum-cut", data[:len(data)-4], ErrTruncated, "checksum"},
			{"checksum-wrong", append(bytes.Clone(data[:len(data)-1]), data[len(data)-1]^0x40), ErrFormat, "may be corrupt"},
		} {
			got, rd, err := readAll(t, bytes.NewReader(tc.in))
			if len(got) != len(frames) {
				t.Fatalf("frame-per-flush %v, %s: %d of %d frames (%v)", opts.FramePerFlush, tc.name, len(got), len(frames), err)
			}
			for i := range got {
				sameFrame(t, i, got[i], frames[i])
			}
			var pe *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.msg) || pe.Frames != int64(len(frames)) {
				t.Fatalf("frame-per-flush %v, %s: error %v, want %v mentioning %q after %d frames", opts.FramePerFlush, tc.name, err, tc.want, tc.msg, len(frames))
			}
			if st := rd.Stats(); len(st) != 1 || st[0] != intact.Stats()[0] {
				t.Fatalf("%s: statistics %+v, want %+v", tc.name, st, intact.Stats())
			}
			t.Logf("%s: %v", tc.name, err)
		}
	}
}
