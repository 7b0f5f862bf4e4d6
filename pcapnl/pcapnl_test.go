package pcapnl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/imp2/imp2/imp2"
	"github.com/klauspost/compress/gzip"
)

// writeTrace writes frames with opts and returns the file bytes.
func writeTrace(t testing.TB, frames []Frame, opts WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		if err := w.WriteFrame(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads every frame (copying Data) and returns the final error,
// nil for a clean io.EOF.
func readAll(t testing.TB, r io.Reader) ([]Frame, *Reader, error) {
	t.Helper()
	rd, err := NewReader(r)
	if err != nil {
		return nil, nil, err
	}
	defer rd.Close()
	var out []Frame
	for {
		f, err := rd.Next()
		if err == io.EOF {
			return out, rd, nil
		}
		if err != nil {
			return out, rd, err
		}
		f.Data = bytes.Clone(f.Data)
		out = append(out, f)
	}
}

func sameFrame(t testing.TB, i int, got, want Frame) {
	t.Helper()
	if got.Time != want.Time || got.Direction != want.Direction || got.Family != want.Family ||
		got.DropCount != want.DropCount || !bytes.Equal(got.Data, want.Data) || got.OrigLen != len(want.Data) {
		t.Fatalf("frame %d:\n got %+v\nwant %+v", i, got, want)
	}
}

// oddFrames adds frames that exercise padding, other families and big data.
func oddFrames() []Frame {
	fr := []Frame{
		{Time: 1, Direction: ToUser, Family: 0, Data: []byte{17, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xAB}},
		{Time: 2, Direction: ToKernel, Family: 16, DropCount: 1 << 40, Data: bytes.Repeat([]byte{1, 2, 3}, 7)},
		{Time: -5, Direction: DirUnknown, PacketType: 3, Family: 0xFFFF, Data: nil},
		{Time: 1<<62 + 12345, Direction: ToUser, Family: 31, Data: bytes.Repeat([]byte{0x5A}, 200_000)},
	}
	return fr
}

func TestRoundTrip(t *testing.T) {
	frames := append(floodTrace(5000, 1), oddFrames()...)
	for _, tc := range []struct {
		name string
		opts WriterOptions
		comp string
	}{
		{"none", WriterOptions{Compression: None}, "none"},
		{"zstd", WriterOptions{}, "zstd"},
		{"zstd-frame-per-flush", WriterOptions{FramePerFlush: true, FlushBytes: 4096}, "zstd"},
		{"zstd-fastest-noflush", WriterOptions{ZstdLevel: 1, FlushBytes: -1, FlushInterval: -1}, "zstd"},
		{"zstd-queue", WriterOptions{Queue: 256 << 10}, "zstd"},
		{"zstd-queue-frame-per-flush", WriterOptions{Queue: 128 << 10, FramePerFlush: true, FlushBytes: 4096}, "zstd"},
		{"none-queue", WriterOptions{Compression: None, Queue: 64 << 10}, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Comment = "round trip"
			tc.opts.Description = "test interface"
			data := writeTrace(t, frames, tc.opts)
			got, rd, err := readAll(t, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(frames) {
				t.Fatalf("%d frames, want %d", len(got), len(frames))
			}
			for i := range frames {
				sameFrame(t, i, got[i], frames[i])
				if pt := packetType(&frames[i]); got[i].PacketType != pt {
					t.Fatalf("frame %d: packet type %d, want %d", i, got[i].PacketType, pt)
				}
			}
			if rd.Compression() != tc.comp || rd.Format() != "pcapng" {
				t.Errorf("compression %q format %q", rd.Compression(), rd.Format())
			}
			sec := rd.Section()
			if sec.Comment != "round trip" || sec.Application != "imp2 pcapnl" || sec.OS == "" {
				t.Errorf("section %+v", sec)
			}
			ifs := rd.Interfaces()
			if len(ifs) != 1 || ifs[0].Name != "imp2" || ifs[0].TSResol != 9 || ifs[0].LinkType != LinkTypeNetlink ||
				ifs[0].Description != "test interface" || ifs[0].Comment != "netlink family 31" || ifs[0].SnapLen != DefaultSnapLen {
				t.Errorf("interfaces %+v", ifs)
			}
			var drops uint64
			for _, f := range frames {
				drops += f.DropCount
			}
			st := rd.Stats()
			if len(st) != 1 || !st[0].HasRecv || st[0].Received != uint64(len(frames))+drops || st[0].Dropped != drops ||
				st[0].Start != frames[0].Time || st[0].End != frames[len(frames)-1].Time {
				t.Errorf("stats %+v, want recv %d drop %d", st, uint64(len(frames))+drops, drops)
			}
		})
	}
}

func TestSnapLenAndStats(t *testing.T) {
	frames := floodTrace(10, 2)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{SnapLen: 40, Compression: None})
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		w.WriteFrame(&frames[i])
	}
	w.SetInterfaceStats(1000, 7)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(&frames[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	got, rd, err := readAll(t, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range got {
		want := frames[i].Data
		if len(want) > 24 {
			want = want[:24]
		}
		if !bytes.Equal(f.Data, want) || f.OrigLen != len(frames[i].Data) {
			t.Fatalf("frame %d: data %d bytes orig %d, want %d/%d", i, len(f.Data), f.OrigLen, len(want), len(frames[i].Data))
		}
	}
	if st := rd.Stats(); st[0].Received != 1000 || st[0].Dropped != 7 {
		t.Errorf("stats %+v", st)
	}
	if _, err := NewWriter(io.Discard, WriterOptions{SnapLen: 8}); err == nil {
		t.Error("snaplen 8 accepted")
	}
}

func TestGzipAndStream(t *testing.T) {
	frames := floodTrace(3000, 3)
	plain := writeTrace(t, frames, WriterOptions{Compression: None})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	zst := writeTrace(t, frames, WriterOptions{})
	for name, in := range map[string]io.Reader{
		"gzip":             bytes.NewReader(gz.Bytes()),
		"gzip-onebyte":     iotest.OneByteReader(bytes.NewReader(gz.Bytes())),
		"zstd-onebyte":     iotest.OneByteReader(bytes.NewReader(zst)),
		"plain-halfreader": iotest.HalfReader(bytes.NewReader(plain)),
		"zstd-pipe":        pipeOf(zst),
	} {
		got, rd, err := readAll(t, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(frames) {
			t.Fatalf("%s: %d frames", name, len(got))
		}
		for i := range frames {
			sameFrame(t, i, got[i], frames[i])
		}
		if want := strings.Split(name, "-")[0]; want != "plain" && rd.Compression() != want {
			t.Errorf("%s: compression %s", name, rd.Compression())
		}
	}
}

// pipeOf streams b through an io.Pipe in small writes, as stdin would.
func pipeOf(b []byte) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for len(b) > 0 {
			n := min(len(b), 1000)
			pw.Write(b[:n])
			b = b[n:]
		}
		pw.Close()
	}()
	return pr
}

// classicPcap builds a classic pcap file with LINKTYPE_NETLINK as libpcap
// writes it for an nlmon device.
func classicPcap(bo binary.AppendByteOrder, nsec bool, link uint32, frames []Frame, pkttype func(Direction) uint16) []byte {
	var b []byte
	magic := uint32(0xa1b2c3d4)
	if nsec {
		magic = 0xa1b23c4d
	}
	b = bo.AppendUint32(b, magic)
	b = bo.AppendUint16(b, 2)
	b = bo.AppendUint16(b, 4)
	b = bo.AppendUint32(b, 0)
	b = bo.AppendUint32(b, 0)
	b = bo.AppendUint32(b, 262144)
	b = bo.AppendUint32(b, link)
	for _, f := range frames {
		sec, frac := f.Time/1e9, f.Time%1e9
		if !nsec {
			frac /= 1000
		}
		n := uint32(len(f.Data) + 16)
		b = bo.AppendUint32(b, uint32(sec))
		b = bo.AppendUint32(b, uint32(frac))
		b = bo.AppendUint32(b, n)
		b = bo.AppendUint32(b, n)
		b = binary.BigEndian.AppendUint16(b, pkttype(f.Direction))
		b = binary.BigEndian.AppendUint16(b, ARPHRDNetlink)
		b = append(b, make([]byte, 10)...)
		b = binary.BigEndian.AppendUint16(b, f.Family)
		b = append(b, f.Data...)
	}
	return b
}

func TestClassicPcap(t *testing.T) {
	frames := floodTrace(500, 4)
	nlmon := func(d Direction) uint16 { // the kernel's nlmon packet types
		if d == ToKernel {
			return packetKernel
		}
		return packetUser
	}
	outgoing := func(Direction) uint16 { return packetOutgoing } // tcpdump -i nlmon0: 4 both ways
	for _, tc := range []struct {
		name string
		bo   binary.AppendByteOrder
		nsec bool
		pt   func(Direction) uint16
	}{
		{"le-usec-nlmon", binary.LittleEndian, false, nlmon},
		{"be-nsec-outgoing", binary.BigEndian, true, outgoing},
	} {
		data := classicPcap(tc.bo, tc.nsec, LinkTypeNetlink, frames, tc.pt)
		got, rd, err := readAll(t, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rd.Format() != "pcap" || len(got) != len(frames) {
			t.Fatalf("%s: format %s, %d frames", tc.name, rd.Format(), len(got))
		}
		for i, f := range got {
			want := frames[i]
			want.DropCount = 0
			if !tc.nsec {
				want.Time -= want.Time % 1000
			}
			// Without epb_flags the direction comes from PACKET_USER /
			// PACKET_KERNEL, or, with 4, from the imp2 message type.
			want.PacketType = tc.pt(frames[i].Direction)
			if f.PacketType != want.PacketType || f.Direction != want.Direction {
				t.Fatalf("%s: frame %d: %v packet type %d, want %v %d", tc.name, i, f.Direction, f.PacketType, want.Direction, want.PacketType)
			}
			sameFrame(t, i, f, want)
		}
	}
}

// TestText2pcap reads traces made by Wireshark's text2pcap -l 253, as
// pcap and as pcapng (no epb_flags), with every kind of packet type in the
// pseudo-header: an imp2 frame gets the direction of its message type
// whatever the packet type says, another frame the one PACKET_USER (6) or
// PACKET_KERNEL (7) names, and otherwise none: packet type 4, what
// tcpdump -i nlmon0 writes both ways, is no evidence, nor is 0.
func TestText2pcap(t *testing.T) {
	if _, err := exec.LookPath("text2pcap"); err != nil {
		needTool(t, "text2pcap")
	}
	ack := imp2.AppendControl(nil, 2, 0x100, 1, 4242) // NLMSG_ERROR, NLM_F_CAPPED
	ack = append(ack, make([]byte, 20)...)
	le.PutUint32(ack, uint32(len(ack)))
	frames := append(floodTrace(20, 5),
		Frame{Family: 31, Data: imp2.AppendControl(nil, imp2.TypeGetStats, imp2.FlagRequest, 2, 4242)},
		Frame{Family: 31, Data: append(imp2.AppendControl(nil, imp2.TypeStats, 0, 2, 4242), make([]byte, imp2.StatsLen)...)},
		Frame{Family: 31, Data: ack},
		Frame{Family: 0, Data: imp2.AppendControl(nil, 1, 0, 9, 0)}, // NETLINK_ROUTE: type 1 means nothing
		Frame{Family: 2, Data: imp2.AppendControl(nil, imp2.TypeEvent, 0, 9, 0)},
	)
	for i := range frames {
		frames[i].Time = int64(i) * 1e9 // text2pcap without -t numbers packets a second apart... or not: times are not checked
	}
	pkttypes := []uint16{packetOutgoing, packetHost, packetUser, packetKernel, 1, 3, 0xffff}
	var txt strings.Builder
	for i, f := range frames {
		pt := pkttypes[i%len(pkttypes)]
		b := classicPcap(binary.LittleEndian, false, 253, []Frame{f}, func(Direction) uint16 { return pt })[24+16:]
		txt.WriteString("0000")
		for _, c := range b {
			txt.WriteString(" ")
			txt.WriteString(hex2(c))
		}
		txt.WriteString("\n")
	}
	want := func(i int) Direction {
		f := frames[i]
		if f.Family == 31 {
			if d := IMP2Direction(f.Data); d != DirUnknown {
				return d
			}
		}
		switch pkttypes[i%len(pkttypes)] {
		case packetUser:
			return ToUser
		case packetKernel:
			return ToKernel
		}
		return DirUnknown
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte(txt.String()), 0o644)
	for _, format := range []string{"pcap", "pcapng"} {
		out := filepath.Join(dir, "out."+format)
		if b, err := exec.Command("text2pcap", "-q", "-F", format, "-l", "253", in, out).CombinedOutput(); err != nil {
			t.Fatalf("text2pcap: %v\n%s", err, b)
		}
		f, _ := os.Open(out)
		defer f.Close()
		got, rd, err := readAll(t, f)
		if err != nil {
			t.Fatal(err)
		}
		if rd.Format() != format || len(got) != len(frames) {
			t.Fatalf("format %s, %d frames", rd.Format(), len(got))
		}
		var unknown int
		for i := range got {
			if !bytes.Equal(got[i].Data, frames[i].Data) || got[i].Family != frames[i].Family ||
				got[i].Direction != want(i) || got[i].PacketType != pkttypes[i%len(pkttypes)] {
				t.Fatalf("%s frame %d: %v packet type %d family %d; want %v, %d, %d", format, i, got[i].Direction, got[i].PacketType, got[i].Family,
					want(i), pkttypes[i%len(pkttypes)], frames[i].Family)
			}
			if i > 0 && i <= 20 && got[i].Direction != ToUser {
				t.Fatalf("%s: event %d is %v", format, i, got[i].Direction)
			}
			if got[i].Direction == DirUnknown {
				unknown++
			}
		}
		if unknown == 0 {
			t.Errorf("%s: no frame of unknown direction: the test lost its point", format)
		}
	}
}

func hex2(c byte) string {
	const h = "0123456789abcdef"
	return string([]byte{h[c>>4], h[c&15]})
}

// needTool skips when a tool is missing outside CI and fails in CI.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found and CI is set: install it (Debian: apt-get install tshark zstd tcpdump)", name)
	}
	t.Skipf("%s not found (set CI to make this a failure)", name)
	return ""
}

func TestTruncatedInProcess(t *testing.T) {
	frames := floodTrace(3000, 6)
	for _, tc := range []struct {
		name string
		opts WriterOptions
	}{
		{"none", WriterOptions{Compression: None}},
		{"zstd", WriterOptions{FlushBytes: 8 << 10}},
		{"zstd-frame-per-flush", WriterOptions{FlushBytes: 8 << 10, FramePerFlush: true}},
		{"zstd-queue", WriterOptions{FlushBytes: 8 << 10, Queue: 128 << 10}},
	} {
		data := writeTrace(t, frames, tc.opts)
		for cut := 0; cut < len(data); cut += 1 + len(data)/97 {
			got, _, err := readAll(t, bytes.NewReader(data[:cut]))
			for i := range got {
				sameFrame(t, i, got[i], frames[i])
			}
			var pe *Error
			switch {
			case err == nil:
				// A plain file cut exactly between blocks is a valid file.
				if tc.opts.Compression != None {
					t.Fatalf("%s cut %d: no error after %d frames", tc.name, cut, len(got))
				}
			case !errors.Is(err, ErrTruncated) || !errors.As(err, &pe):
				t.Fatalf("%s cut %d: %v", tc.name, cut, err)
			case strings.Contains(err.Error(), "decompressed offset") != (tc.opts.Compression != None && cut >= 4),
				!strings.Contains(err.Error(), " offset "), strings.Count(err.Error(), "pcapnl") != 1:
				// The offset says which stream it counts (the file's until a
				// compressed stream's magic is there); pcapnl is named once.
				t.Fatalf("%s: message %q", tc.name, err)
			}
			if pe != nil && pe.Frames != int64(len(got)) && cut >= 32 {
				t.Fatalf("%s cut %d: error says %d frames, got %d", tc.name, cut, pe.Frames, len(got))
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	good := writeTrace(t, floodTrace(50, 7), WriterOptions{Compression: None})
	zst := writeTrace(t, floodTrace(2000, 7), WriterOptions{})
	mut := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }
	idbOff := int(le.Uint32(good[4:]))
	epbOff := idbOff + int(le.Uint32(good[idbOff+4:]))
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"garbage", []byte("hello, this is not a capture file at all"), ErrFormat},
		{"pcap-ethernet", classicPcap(binary.LittleEndian, false, 1, floodTrace(3, 1), func(Direction) uint16 { return 0 }), ErrLinkType},
		{"pcapng-ethernet", mut(good, func(b []byte) { le.PutUint16(b[idbOff+8:], 1) }), ErrLinkType},
		{"absurd-block-length", mut(good, func(b []byte) { le.PutUint32(b[epbOff+4:], 0xFFFFFFF0) }), ErrFormat},
		{"odd-block-length", mut(good, func(b []byte) { le.PutUint32(b[epbOff+4:], 85) }), ErrFormat},
		{"tiny-block-length", mut(good, func(b []byte) { le.PutUint32(b[epbOff+4:], 4) }), ErrFormat},
		{"trailer-mismatch", mut(good, func(b []byte) { b[epbOff+int(le.Uint32(good[epbOff+4:]))-4]++ }), ErrFormat},
		{"undeclared-interface", mut(good, func(b []byte) { le.PutUint32(b[epbOff+8:], 3) }), ErrFormat},
		{"caplen-past-block", mut(good, func(b []byte) { le.PutUint32(b[epbOff+20:], 1000) }), ErrFormat},
		{"caplen-below-pseudo-header", mut(good, func(b []byte) { le.PutUint32(b[epbOff+20:], 3) }), ErrFormat},
		{"bad-bom", mut(good, func(b []byte) { b[8] = 0 }), ErrFormat},
		{"pcapng-version-2", mut(good, func(b []byte) { le.PutUint16(b[12:], 2) }), ErrFormat},
		{"bad-tsresol", mut(good, func(b []byte) {
			i := bytes.Index(b[idbOff:], []byte{9, 0, 1, 0, 9})
			b[idbOff+i+4] = 40
		}), ErrFormat},
		{"zstd-corrupt", mut(zst, func(b []byte) {
			for i := len(b) / 3; i < len(b)/3+64; i++ {
				b[i] ^= 0x5A
			}
		}), ErrFormat},
		{"gzip-garbage", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef}, nil},
		{"pcap-huge-record", mut(classicPcap(binary.LittleEndian, false, 253, floodTrace(2, 1), func(Direction) uint16 { return 0 }),
			func(b []byte) { le.PutUint32(b[24+8:], 0x7FFFFFFF) }), ErrFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, bytes.NewReader(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if n := strings.Count(err.Error(), "pcapnl"); n != 1 {
				t.Errorf("error %q names pcapnl %d times", err, n)
			}
			t.Log(err)
		})
	}
}

func TestDecodeHelpers(t *testing.T) {
	frames := floodTrace(3, 8)
	if _, err := frames[0].Event(); !errors.Is(err, ErrNotEvent) {
		t.Errorf("register frame: %v", err)
	}
	h, err := frames[0].Header()
	if err != nil || h.Type != imp2.TypeRegister || h.PID != 4242 {
		t.Errorf("header %+v %v", h, err)
	}
	ev, err := frames[1].Event()
	if err != nil || !ev.Extended || ev.Src.String() != "192.168.1.10" || ev.ICMPType != 8 || ev.ICMPSeq != 1 {
		t.Errorf("event %+v %v", ev, err)
	}
	legacy := Frame{Family: 31, Data: imp2.AppendEventMessage(nil, 9, imp2.Event{Src: ev.Src, Dest: ev.Dest})}
	legacy.Data = imp2.AppendControl(legacy.Data, imp2.TypeClose, 0, 0, 1) // a second message must not look like an extension
	if ev, err := legacy.Event(); err != nil || ev.Extended || ev.Dest != frames[1].mustEvent(t).Dest {
		t.Errorf("legacy %+v %v", ev, err)
	}
	n := 0
	for m, err := range legacy.Messages() {
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 && m.Header.Type != imp2.TypeClose {
			t.Errorf("second message %+v", m)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d messages", n)
	}
	other := frames[1]
	other.Family = 0
	if _, err := other.Event(); !errors.Is(err, ErrNotEvent) {
		t.Errorf("family 0: %v", err)
	}
	if _, err := other.EventOn(0); err != nil {
		t.Errorf("EventOn(0): %v", err)
	}
	short := Frame{Family: 31, Data: []byte{1, 2, 3}}
	if _, err := short.Event(); !errors.Is(err, imp2.ErrShort) {
		t.Errorf("short: %v", err)
	}
}

func (f Frame) mustEvent(t *testing.T) imp2.Event {
	e, err := f.Event()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestWriterDirectionFields pins what Writer stores for each direction:
// the pseudo-header packet type and epb_flags every earlier version wrote
// for known directions (so that traces read the same by old and new
// readers), and for an unknown one the frame's own packet type and no
// direction flag.
func TestWriterDirectionFields(t *testing.T) {
	for _, tc := range []struct {
		f         Frame
		pt        uint16
		epbFlags  uint32
		wantPType uint16
	}{
		{Frame{Direction: ToUser, PacketType: 7}, 0, 1, 0},
		{Frame{Direction: ToKernel, PacketType: 6}, 4, 2, 4},
		{Frame{Direction: DirUnknown, PacketType: 4}, 4, 0, 4},
		{Frame{Direction: DirUnknown}, 0, 0, 0},
	} {
		tc.f.Family = 16
		tc.f.Data = imp2.AppendControl(nil, 1, 0, 0, 0)
		b := writeTrace(t, []Frame{tc.f}, WriterOptions{Compression: None})
		offs := 0
		for range 2 { // SHB, IDB
			offs += int(le.Uint32(b[offs+4:]))
		}
		epb := b[offs:]
		if pt := binary.BigEndian.Uint16(epb[28:]); pt != tc.pt {
			t.Errorf("%v: packet type %d, want %d", tc.f.Direction, pt, tc.pt)
		}
		opt := epb[28+32:]
		if code, flags := le.Uint16(opt), le.Uint32(opt[4:]); code != 2 || flags != tc.epbFlags {
			t.Errorf("%v: option %d = %d, want epb_flags %d", tc.f.Direction, code, flags, tc.epbFlags)
		}
		got, _, err := readAll(t, bytes.NewReader(b))
		if err != nil || len(got) != 1 || got[0].Direction != tc.f.Direction || got[0].PacketType != tc.wantPType {
			t.Errorf("%v: read back %+v, %v", tc.f.Direction, got, err)
		}
	}
}
