package pcapnl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/imp2/imp2/imp2"
	"github.com/klauspost/compress/gzip"
)

// fuzzSeeds are small inputs of every kind the reader accepts, plus a
// truncated one. testdata/fuzz/FuzzReader holds them as the committed seed
// corpus (regenerate with PCAPNL_WRITE_CORPUS=1 go test -run WriteCorpus).
func fuzzSeeds(t testing.TB) map[string][]byte {
	frames := append(floodTrace(6, 12), oddFrames()[:3]...)
	plain := writeTrace(t, frames, WriterOptions{Compression: None, SnapLen: 128})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	zst := writeTrace(t, frames, WriterOptions{FlushBytes: 200})
	pt := func(d Direction) uint16 { return packetType(&Frame{Direction: d}) }
	offs := blockOffsets(plain)
	foreign := append(append(bytes.Clone(plain[:offs[4]]), foreignBlocks(1)...), plain[offs[4]:]...)
	return map[string][]byte{
		"pcapng-foreign-idb": foreign,
		"zstd-no-checksum":   zst[:len(zst)-4],
		"pcap-nlmon":         classicPcap(binary.LittleEndian, false, LinkTypeNetlink, frames, func(Direction) uint16 { return packetOutgoing }),
		"pcapng":             plain,
		"pcapng-zstd":        zst,
		"pcapng-gzip":        gz.Bytes(),
		"pcapng-cut":         plain[:len(plain)-30],
		"zstd-cut":           zst[:len(zst)*2/3],
		"pcap-le-usec":       classicPcap(binary.LittleEndian, false, LinkTypeNetlink, frames[:4], pt),
		"pcap-be-nsec":       classicPcap(binary.BigEndian, true, LinkTypeNetlink, frames[:4], pt),
		"pcap-ethernet":      classicPcap(binary.LittleEndian, false, 1, frames[:1], pt),
	}
}

func TestWriteCorpus(t *testing.T) {
	if os.Getenv("PCAPNL_WRITE_CORPUS") == "" {
		t.Skip("set PCAPNL_WRITE_CORPUS=1 to regenerate testdata/fuzz/FuzzReader")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	os.MkdirAll(dir, 0o755)
	for name, b := range fuzzSeeds(t) {
		os.WriteFile(filepath.Join(dir, "seed-"+name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644)
	}
}

// FuzzReader feeds arbitrary bytes to the reader: it must never panic,
// return frames whose sizes exceed the limits, or fail with anything but an
// *Error (or io.EOF at a clean end).
func FuzzReader(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("NewReader error %T: %v", err, err)
			}
			return
		}
		defer r.Close()
		for range 100000 {
			fr, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Next error %T: %v", err, err)
				}
				if _, err2 := r.Next(); err2 != err {
					t.Fatalf("error not sticky: %v then %v", err, err2)
				}
				return
			}
			if len(fr.Data) > MaxBlockLen || fr.OrigLen < len(fr.Data) || fr.Direction > ToKernel {
				t.Fatalf("frame data %d orig %d direction %d", len(fr.Data), fr.OrigLen, fr.Direction)
			}
			for range fr.Messages() {
			}
			fr.Event()
		}
	})
}

// FuzzRoundTrip writes one arbitrary frame between two fixed ones and
// reads them back.
func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(1_700_000_000_000_000_000), uint16(0), uint16(31), uint64(0), []byte("\x18\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xc0\xa8\x01\x0a\xc0\xa8\x01\x01"), false)
	f.Add(int64(-1), uint16(4), uint16(0xffff), uint64(1<<63), []byte{}, true)
	f.Fuzz(func(t *testing.T, ts int64, dir, fam uint16, drops uint64, data []byte, plain bool) {
		if len(data) > 1<<16 {
			return
		}
		opts := WriterOptions{}
		if plain {
			opts.Compression = None
		}
		fixed := Frame{Time: 5, Direction: ToUser, Family: 31, Data: []byte{16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
		// dir: the direction in its low bits (3 is out of range: unknown),
		// a packet type above them.
		d := Direction(dir & 3)
		if d > ToKernel {
			d = DirUnknown
		}
		in := []Frame{fixed, {Time: ts, Direction: d, PacketType: dir >> 2, Family: fam, DropCount: drops, Data: data}, fixed}
		got, _, err := readAll(t, bytes.NewReader(writeTrace(t, in, opts)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("%d frames", len(got))
		}
		// A known direction is in epb_flags; otherwise the imp2 type (the
		// default family 31) or packet types 6 and 7 decide, or nothing.
		want := in[1]
		if want.Direction == DirUnknown && fam == imp2.DefaultFamily {
			want.Direction = IMP2Direction(data)
		}
		if want.Direction == DirUnknown && want.PacketType == packetUser {
			want.Direction = ToUser
		}
		if want.Direction == DirUnknown && want.PacketType == packetKernel {
			want.Direction = ToKernel
		}
		if pt := packetType(&in[1]); got[1].PacketType != pt {
			t.Fatalf("packet type %d, want %d", got[1].PacketType, pt)
		}
		for i, w := range []Frame{fixed, want, fixed} {
			sameFrame(t, i, got[i], w)
		}
	})
}
