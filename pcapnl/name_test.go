package pcapnl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Format
		c    Compression
	}{
		{"trace.pcapng.zst", Pcapng, Zstd},
		{"trace.pcapng.gz", Pcapng, Gzip},
		{"trace.pcapng", Pcapng, None},
		{"trace", Pcapng, None},
		{"-", Pcapng, None},
		{"dir.zst/trace", Pcapng, None},
		{"trace.zst", Pcapng, Zstd},
		{"trace.pcap", Pcap, None},
		{"trace.pcap.zst", Pcap, Zstd},
		{"trace.pcap.gz", Pcap, Gzip},
		{"TRACE.PCAP.GZ", Pcap, Gzip},
		{"trace.pcap.bak", Pcapng, None},
		{"trace.zst.pcap", Pcap, None},
	} {
		if f, c := FormatFor(tc.name); f != tc.f || c != tc.c {
			t.Errorf("FormatFor(%q) = %v %v, want %v %v", tc.name, f, c, tc.f, tc.c)
		}
	}
	for v, want := range map[string]Compression{"auto": Gzip, "zstd": Zstd, "gzip": Gzip, "none": None} {
		if c, err := ParseCompression(v, "x.pcap.gz"); err != nil || c != want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", v, c, err, want)
		}
	}
	if _, err := ParseCompression("lz4", "x"); err == nil || !strings.Contains(err.Error(), `"lz4"`) {
		t.Errorf("ParseCompression(lz4): %v", err)
	}
}

// withUnknown adds frames of no stated direction and other families to a
// flood, so that every packet type path of the pcap writer is taken.
func withUnknown(frames []Frame) []Frame {
	return append(frames,
		Frame{Time: frames[len(frames)-1].Time + 1, PacketType: 3, Family: 16, Data: []byte{16, 0, 0, 0, 0x20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}},
		Frame{Time: frames[len(frames)-1].Time + 2, Direction: ToKernel, Family: 0, Data: []byte{1, 2, 3}})
}

// TestPcapWriter checks the classic pcap Writer byte for byte against a
// file assembled by hand from the libpcap format (classicPcap), and what
// Reader gives back: everything but the drop counts, in every
// compression.
func TestPcapWriter(t *testing.T) {
	frames := withUnknown(floodTrace(1000, 5))
	nlmonOrOwn := func(i int) uint16 {
		return pcapPacketType(&frames[i])
	}
	i := -1
	want := classicPcap(binary.LittleEndian, true, LinkTypeNetlink, frames, func(Direction) uint16 { i++; return nlmonOrOwn(i) })
	if got := writeTrace(t, frames, WriterOptions{Format: Pcap, Compression: None}); !bytes.Equal(got, want) {
		t.Fatalf("pcap Writer output (%d bytes) differs from the hand-made file (%d bytes)", len(got), len(want))
	}
	for _, c := range []Compression{None, Zstd, Gzip} {
		data := writeTrace(t, frames, WriterOptions{Format: Pcap, Compression: c, FlushBytes: 4 << 10})
		got, rd, err := readAll(t, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if rd.Format() != "pcap" || rd.Compression() != c.String() || len(got) != len(frames) {
			t.Fatalf("%v: read %s %s, %d frames of %d", c, rd.Compression(), rd.Format(), len(got), len(frames))
		}
		for k, f := range got {
			w := frames[k]
			w.DropCount = 0 // what classic pcap loses
			sameFrame(t, k, f, w)
		}
	}
}

// TestGzipCrashTolerance cuts a gzip trace right after a flush, as a
// writer killed before its next flush leaves it: Reader returns every
// flushed frame, then ErrTruncated; with FramePerFlush the flushed part
// is whole gzip members, which read to a clean end.
func TestGzipCrashTolerance(t *testing.T) {
	frames := floodTrace(3000, 6)
	const flushed = 2000
	for i, format := range []Format{Pcapng, Pcap, Pcapng} {
		var buf bytes.Buffer
		fpf := i == 2 // a gzip member per flush
		w, err := NewWriter(&buf, WriterOptions{Format: format, Compression: Gzip, FlushInterval: -1, FlushBytes: -1, FramePerFlush: fpf})
		if err != nil {
			t.Fatal(err)
		}
		for i := range frames[:flushed] {
			w.WriteFrame(&frames[i])
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		cut := bytes.Clone(buf.Bytes())
		for i := range frames[flushed:] {
			w.WriteFrame(&frames[flushed+i])
		}
		w.Close()
		got, _, err := readAll(t, bytes.NewReader(cut))
		if errors.Is(err, ErrTruncated) == fpf || (fpf && err != nil) || len(got) != flushed {
			t.Fatalf("%v (member per flush %v): cut gzip: %d frames, %v; want %d and ErrTruncated (nil with a member per flush)", format, fpf, len(got), err, flushed)
		}
	}
}

// TestCreateByName writes a trace under every kind of name with Create
// and checks what is in the file, by magic numbers, through Reader and
// with tshark (tcpdump: TestTcpdumpReadsPcap).
func TestCreateByName(t *testing.T) {
	frames := floodTrace(200, 7)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, comp, format string
		magic              []byte
	}{
		{"a.pcapng.zst", "zstd", "pcapng", []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{"a.pcapng.gz", "gzip", "pcapng", []byte{0x1f, 0x8b}},
		{"a.pcapng", "none", "pcapng", []byte{0x0a, 0x0d, 0x0d, 0x0a}},
		{"a", "none", "pcapng", []byte{0x0a, 0x0d, 0x0d, 0x0a}},
		{"a.pcap", "none", "pcap", []byte{0x4d, 0x3c, 0xb2, 0xa1}},
		{"a.pcap.zst", "zstd", "pcap", []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{"a.pcap.gz", "gzip", "pcap", []byte{0x1f, 0x8b}},
	} {
		path := filepath.Join(dir, tc.name)
		w, err := Create(path, WriterOptions{Compression: Zstd, Format: Pcapng}) // ignored: the name decides
		if err != nil {
			t.Fatal(err)
		}
		for i := range frames {
			w.WriteFrame(&frames[i])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		if !bytes.HasPrefix(data, tc.magic) {
			t.Errorf("%s starts % x, want % x", tc.name, data[:4], tc.magic)
		}
		got, rd, err := readAll(t, bytes.NewReader(data))
		if err != nil || rd.Compression() != tc.comp || rd.Format() != tc.format || len(got) != len(frames) {
			t.Fatalf("%s: read %d frames, %v; %s %s, want %s %s", tc.name, len(got), err, rd.Compression(), rd.Format(), tc.comp, tc.format)
		}
		// tshark reads all of them (zstd, gzip and both formats).
		if rows := tsharkFields(t, path, nil, "frame.time_epoch", "netlink.family"); len(rows) != len(frames) ||
			rows[0][0] != fmt.Sprintf("%d.%09d", frames[0].Time/1e9, frames[0].Time%1e9) || rows[0][1] != "0x001f" {
			t.Errorf("%s: tshark: %d rows, first %q", tc.name, len(rows), rows[0])
		}
	}
}

// TestFormatLoses: pcapng loses nothing, classic pcap says what it loses.
func TestFormatLoses(t *testing.T) {
	if Pcapng.Loses() != "" || !strings.Contains(Pcap.Loses(), "drop counts") {
		t.Errorf("Loses: pcapng %q, pcap %q", Pcapng.Loses(), Pcap.Loses())
	}
}
