package imp2

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Len: HeaderLen},
		{Len: HeaderLen + EventLen, Type: TypeEvent, Seq: 1},
		{Len: math.MaxUint32, Type: math.MaxUint16, Flags: math.MaxUint16, Seq: math.MaxUint32, PID: math.MaxUint32},
		{Len: 0x01020304, Type: 0x0506, Flags: 0x0708, Seq: 0x090a0b0c, PID: 0x0d0e0f10},
	} {
		b := make([]byte, max(HeaderLen, int(min(h.Len, 4096))))
		PutHeader(b, h)
		if h.Len > uint32(len(b)) {
			if _, err := ParseHeader(b); !errors.Is(err, ErrBadLength) {
				t.Errorf("ParseHeader(%+v): err %v, want ErrBadLength", h, err)
			}
			continue
		}
		got, err := ParseHeader(b)
		if err != nil || got != h {
			t.Errorf("ParseHeader(PutHeader(%+v)) = %+v, %v", h, got, err)
		}
	}
}

func TestHeaderByteOrder(t *testing.T) {
	b := make([]byte, HeaderLen)
	PutHeader(b, Header{Len: 0x01020304, Type: 0x0506, Flags: 0x0708, Seq: 0x090a0b0c, PID: 0x0d0e0f10})
	for _, f := range []struct {
		off, size int
		want      uint64
	}{{0, 4, 0x01020304}, {4, 2, 0x0506}, {6, 2, 0x0708}, {8, 4, 0x090a0b0c}, {12, 4, 0x0d0e0f10}} {
		if got := nativeUint(b[f.off : f.off+f.size]); got != f.want {
			t.Errorf("header bytes %d..%d = %#x, want %#x in host order", f.off, f.off+f.size, got, f.want)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	hdr := func(n uint32, extra int) []byte {
		b := make([]byte, HeaderLen+extra)
		ne.PutUint32(b, n)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"nil", nil, ErrShort},
		{"15 bytes", make([]byte, 15), ErrShort},
		{"len 0", hdr(0, 0), ErrBadLength},
		{"len 15", hdr(15, 8), ErrBadLength},
		{"len past buffer", hdr(HeaderLen+9, 8), ErrBadLength},
		{"len max", hdr(math.MaxUint32, 0), ErrBadLength},
		{"len exact", hdr(HeaderLen+8, 8), nil},
		{"trailing bytes", hdr(HeaderLen, 8), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHeader(tc.b)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			// A bad nlmsg_len still comes with the header as decoded
			// (an ack echoes its sequence number).
			if len(tc.b) >= HeaderLen && h.Len != ne.Uint32(tc.b) {
				t.Fatalf("header %+v, want nlmsg_len %d", h, ne.Uint32(tc.b))
			}
		})
	}
}

func TestAppendControl(t *testing.T) {
	for _, typ := range []uint16{TypeRegister, TypeClose, TypeGetStats} {
		b := AppendControl([]byte{0xee}, typ, FlagAck, 42, 1234)
		if len(b) != 1+HeaderLen || b[0] != 0xee {
			t.Fatalf("AppendControl kept %d bytes / prefix %#x", len(b), b[0])
		}
		h, err := ParseHeader(b[1:])
		want := Header{Len: HeaderLen, Type: typ, Flags: FlagAck, Seq: 42, PID: 1234}
		if err != nil || h != want {
			t.Errorf("type %d: got %+v, %v, want %+v", typ, h, err, want)
		}
	}
}

// testEvent sets every field to a distinct value so that a swapped or
// misplaced field shows up.
func testEvent() Event {
	return Event{
		Src:       netip.MustParseAddr("10.1.2.3"),
		Dest:      netip.MustParseAddr("192.168.200.254"),
		Extended:  true,
		TimeNs:    0x0102030405060708,
		IfIndex:   -7,
		ICMPType:  8,
		ICMPCode:  3,
		ICMPID:    0xabcd,
		ICMPSeq:   0x1234,
		Flags:     EventFlagICMP,
		IPLen:     84,
		HasQueue:  true,
		RmemAlloc: 0x11223344,
		RcvBuf:    0x55667788,
		TrueSize:  768,
		DropRmem:  0x0a0b0c0d,
	}
}

func TestEventRoundTrip(t *testing.T) {
	ext := testEvent()
	legacy := Event{Src: ext.Src, Dest: ext.Dest}
	noQueue := ext
	noQueue.HasQueue, noQueue.RmemAlloc, noQueue.RcvBuf, noQueue.TrueSize, noQueue.DropRmem = false, 0, 0, 0, 0
	for _, e := range []Event{ext, noQueue, legacy, {Src: netip.IPv4Unspecified(), Dest: netip.MustParseAddr("255.255.255.255")}} {
		p := AppendEvent(nil, e)
		wantLen := LegacyLen
		if e.Extended {
			wantLen = EventLen
		}
		if e.HasQueue {
			wantLen = QueueEventLen
		}
		if len(p) != wantLen {
			t.Fatalf("AppendEvent(%+v): %d bytes, want %d", e, len(p), wantLen)
		}
		got, err := ParseEvent(p)
		if err != nil || got != e {
			t.Errorf("ParseEvent(AppendEvent(%+v)) = %+v, %v", e, got, err)
		}
	}
}

func TestEventByteOrder(t *testing.T) {
	p := AppendEvent(nil, testEvent())
	// Addresses and ICMP id/seq stay in network order, as on the wire.
	if !bytes.Equal(p[0:8], []byte{10, 1, 2, 3, 192, 168, 200, 254}) {
		t.Errorf("src/dest bytes % x", p[0:8])
	}
	if !bytes.Equal(p[22:26], []byte{0xab, 0xcd, 0x12, 0x34}) {
		t.Errorf("icmp id/seq bytes % x, want network order", p[22:26])
	}
	if got := nativeUint(p[8:16]); got != 0x0102030405060708 {
		t.Errorf("tstamp_ns %#x, want host order", got)
	}
	if p[30] != 0 || p[31] != 0 {
		t.Errorf("reserved bytes % x, want zero", p[30:32])
	}
}

func TestParseEventLengths(t *testing.T) {
	full := AppendEvent(nil, testEvent())
	for _, tc := range []struct {
		n        int
		err      error
		extended bool
		queue    bool
	}{
		{0, ErrShort, false, false},
		{LegacyLen - 1, ErrShort, false, false},
		{LegacyLen, nil, false, false},
		{EventLen - 1, nil, false, false}, // partial extension: read as legacy
		{EventLen, nil, true, false},      // a module before 2.1
		{QueueEventLen - 1, nil, true, false},
		{QueueEventLen, nil, true, true},
		{QueueEventLen + 16, nil, true, true}, // later extensions are ignored
	} {
		p := append(append([]byte(nil), full...), make([]byte, 16)...)[:tc.n]
		e, err := ParseEvent(p)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%d bytes: err %v, want %v", tc.n, err, tc.err)
			continue
		}
		if err == nil && (e.Extended != tc.extended || e.HasQueue != tc.queue || e.Src != testEvent().Src) {
			t.Errorf("%d bytes: %+v, want extended=%v queue=%v", tc.n, e, tc.extended, tc.queue)
		}
	}
}

func TestAppendEventMessage(t *testing.T) {
	for _, e := range []Event{testEvent(), {Src: testEvent().Src, Dest: testEvent().Dest}} {
		b := AppendEventMessage([]byte("x"), 77, e)
		h, err := ParseHeader(b[1:])
		if err != nil {
			t.Fatal(err)
		}
		want := Header{Len: uint32(len(b) - 1), Type: TypeEvent, Seq: 77}
		if h != want {
			t.Errorf("header %+v, want %+v", h, want)
		}
		got, err := ParseEvent(b[1+HeaderLen : 1+h.Len])
		if err != nil || got != e {
			t.Errorf("event %+v, %v, want %+v", got, err, e)
		}
	}
}

func testStats() Stats {
	return Stats{
		Events: 1<<40 + 1, UnicastOK: 2, EAGAIN: 3, ECONNREFUSED: 4, ENOMEM: 5, OtherErr: 6,
		Consumers: 7, SelfRegistered: true, SelfSent: 9, SelfDropped: 10, SelfLastSeq: 0xfffffffe,
	}
}

func TestStatsRoundTrip(t *testing.T) {
	for _, s := range []Stats{{}, testStats()} {
		p := AppendStats([]byte{1, 2}, s)[2:]
		if len(p) != StatsLen {
			t.Fatalf("AppendStats: %d bytes, want %d", len(p), StatsLen)
		}
		got, err := ParseStats(p)
		if err != nil || got != s {
			t.Errorf("ParseStats(AppendStats(%+v)) = %+v, %v", s, got, err)
		}
	}
	if _, err := ParseStats(make([]byte, StatsLen-1)); !errors.Is(err, ErrShort) {
		t.Errorf("short stats: err %v, want ErrShort", err)
	}
	if _, err := ParseStats(nil); !errors.Is(err, ErrShort) {
		t.Errorf("nil stats: err %v, want ErrShort", err)
	}
}

// cField is one member of a struct in imp2_uapi.h with the offset its
// comment documents.
type cField struct {
	name, ctype string
	off         int // from the comment
}

var cSizes = map[string]int{
	"__u8": 1, "__u16": 2, "__be16": 2, "__u32": 4, "__s32": 4, "__be32": 4, "__u64": 8,
	"struct packet_info": 8,
}

// parseUAPI reads kmod/imp2_uapi.h: the structs with their commented
// offsets, the #defines and the enum constants.
func parseUAPI(t *testing.T) (structs map[string][]cField, consts map[string]string) {
	f, err := os.Open("../kmod/imp2_uapi.h")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("kmod/imp2_uapi.h not present (test binary run outside the source tree)")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		structStart = regexp.MustCompile(`^struct (\w+) \{`)
		member      = regexp.MustCompile(`^\s*((?:struct )?\w+)\s+(\w+);\s*(?:/\*\s*(\d+))?`)
		define      = regexp.MustCompile(`^#define\s+(\w+)\s+(\S+)(?:.*/\*\s*(\d+)\s*\*/)?`)
		enumConst   = regexp.MustCompile(`^\s*(IMP2_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+),`)
	)
	structs, consts = map[string][]cField{}, map[string]string{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch m := structStart.FindStringSubmatch(line); {
		case m != nil:
			cur = m[1]
			structs[cur] = nil
			continue
		case strings.HasPrefix(line, "};"):
			cur = ""
			continue
		}
		if m := member.FindStringSubmatch(line); m != nil && cur != "" {
			off := -1
			if m[3] != "" {
				off, _ = strconv.Atoi(m[3])
			}
			structs[cur] = append(structs[cur], cField{m[2], m[1], off})
		}
		if m := define.FindStringSubmatch(line); m != nil {
			consts[m[1]] = m[2]
			if m[3] != "" { // sizeof(...) with the size in a comment
				consts[m[1]] = m[3]
			}
		}
		if m := enumConst.FindStringSubmatch(line); m != nil {
			consts[m[1]] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return structs, consts
}

// layout checks that the commented offsets agree with C's natural
// alignment and returns the struct size.
func layout(t *testing.T, name string, fields []cField) int {
	t.Helper()
	off, align := 0, 1
	for _, f := range fields {
		size, ok := cSizes[f.ctype]
		if !ok {
			t.Fatalf("%s.%s: unknown type %q", name, f.name, f.ctype)
		}
		a := min(size, 8)
		if f.ctype == "struct packet_info" {
			a = 4
		}
		align = max(align, a)
		off = (off + a - 1) / a * a
		if f.off >= 0 && f.off != off {
			t.Errorf("%s.%s: comment says offset %d, C layout gives %d", name, f.name, f.off, off)
		}
		off += size
	}
	return (off + align - 1) / align * align
}

func TestUAPIHeader(t *testing.T) {
	structs, consts := parseUAPI(t)
	for name, want := range map[string]int{
		"NL_IMP2": DefaultFamily, "IMP2_U_PID": TypeRegister, "IMP2_K_MSG": TypeEvent,
		"IMP2_CLOSE": TypeClose, "IMP2_GET_STATS": TypeGetStats, "IMP2_STATS": TypeStats,
		"IMP2_EVF_ICMP": EventFlagICMP, "IMP2_LEGACY_LEN": LegacyLen, "IMP2_EVENT_LEN": EventLen,
		"IMP2_QUEUE_EVENT_LEN": QueueEventLen,
		"IMP2_STATS_LEN":       StatsLen,
	} {
		got, err := strconv.ParseInt(consts[name], 0, 64)
		if err != nil || got != int64(want) {
			t.Errorf("%s = %q in the header, Go mirror has %d", name, consts[name], want)
		}
	}
	for name, want := range map[string]int{"packet_info": LegacyLen, "imp2_event": QueueEventLen, "imp2_stats": StatsLen} {
		if got := layout(t, name, structs[name]); got != want {
			t.Errorf("sizeof(struct %s) = %d by the header, Go mirror has %d", name, got, want)
		}
	}

	// Every documented member must be where the Go encoder writes it.
	ev := AppendEvent(nil, testEvent())
	e := testEvent()
	evWant := map[string]uint64{
		"tstamp_ns": e.TimeNs, "ifindex": uint64(uint32(e.IfIndex)), "icmp_type": uint64(e.ICMPType),
		"icmp_code": uint64(e.ICMPCode), "echo_id": uint64(e.ICMPID), "echo_seq": uint64(e.ICMPSeq),
		"flags": uint64(e.Flags), "ip_len": uint64(e.IPLen), "reserved": 0,
		"rmem_alloc": uint64(e.RmemAlloc), "rcvbuf": uint64(e.RcvBuf), "truesize": uint64(e.TrueSize),
		"drop_rmem": uint64(e.DropRmem),
	}
	checkFields(t, "imp2_event", structs["imp2_event"][1:], ev, evWant)
	if !bytes.Equal(ev[:LegacyLen], []byte{10, 1, 2, 3, 192, 168, 200, 254}) {
		t.Errorf("imp2_event.info: % x", ev[:LegacyLen])
	}
	s := testStats()
	stWant := map[string]uint64{
		"events": s.Events, "unicast_ok": s.UnicastOK, "eagain": s.EAGAIN, "econnrefused": s.ECONNREFUSED,
		"enomem": s.ENOMEM, "other_err": s.OtherErr, "consumers": uint64(s.Consumers), "self_registered": 1,
		"self_sent": s.SelfSent, "self_dropped": s.SelfDropped, "self_last_seq": uint64(s.SelfLastSeq), "reserved": 0,
	}
	checkFields(t, "imp2_stats", structs["imp2_stats"], AppendStats(nil, s), stWant)
}

func checkFields(t *testing.T, name string, fields []cField, b []byte, want map[string]uint64) {
	t.Helper()
	if len(fields) != len(want) {
		t.Errorf("struct %s has %d members in the header, the test knows %d", name, len(fields), len(want))
	}
	for _, f := range fields {
		w, ok := want[f.name]
		if !ok {
			t.Errorf("%s.%s: member unknown to the Go mirror", name, f.name)
			continue
		}
		raw := b[f.off : f.off+cSizes[f.ctype]]
		got := nativeUint(raw)
		if strings.HasPrefix(f.ctype, "__be") {
			got = bigUint(raw)
		}
		if got != w {
			t.Errorf("%s.%s at offset %d: %#x, want %#x", name, f.name, f.off, got, w)
		}
	}
}

func nativeUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(ne.Uint16(b))
	case 4:
		return uint64(ne.Uint32(b))
	}
	return ne.Uint64(b)
}

func bigUint(b []byte) uint64 {
	var x [8]byte
	copy(x[8-len(b):], b)
	return binary.BigEndian.Uint64(x[:])
}

func FuzzParseHeader(f *testing.F) {
	f.Add(AppendControl(nil, TypeRegister, 0, 0, 0))
	f.Add(AppendEventMessage(nil, 1, testEvent()))
	f.Add(make([]byte, 15))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrBadLength) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if h.Len < HeaderLen || int(h.Len) > len(b) {
			t.Fatalf("accepted nlmsg_len %d for %d bytes", h.Len, len(b))
		}
		out := make([]byte, HeaderLen)
		PutHeader(out, h)
		if !bytes.Equal(out, b[:HeaderLen]) {
			t.Fatalf("re-encoded % x, input % x", out, b[:HeaderLen])
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add(AppendEvent(nil, testEvent()))
	f.Add(AppendEvent(nil, Event{Src: testEvent().Src, Dest: testEvent().Dest}))
	f.Add(make([]byte, 7))
	f.Add(make([]byte, EventLen-1))
	f.Add(make([]byte, EventLen+5))
	f.Add(make([]byte, QueueEventLen+3))
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := ParseEvent(p)
		if err != nil {
			if !errors.Is(err, ErrShort) || len(p) >= LegacyLen {
				t.Fatalf("error %v for %d bytes", err, len(p))
			}
			return
		}
		n := LegacyLen
		if e.Extended {
			n = EventLen
		}
		if e.HasQueue {
			n = QueueEventLen
		}
		want := bytes.Clone(p[:n])
		if e.Extended {
			want[30], want[31] = 0, 0 // reserved, not carried in Event
		}
		if got := AppendEvent(nil, e); !bytes.Equal(got, want) {
			t.Fatalf("re-encoded % x, input % x", got, want)
		}
	})
}

func FuzzParseStats(f *testing.F) {
	f.Add(AppendStats(nil, testStats()))
	f.Add(make([]byte, StatsLen-1))
	f.Add(bytes.Repeat([]byte{0xff}, StatsLen+3))
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := ParseStats(p)
		if err != nil {
			if !errors.Is(err, ErrShort) || len(p) >= StatsLen {
				t.Fatalf("error %v for %d bytes", err, len(p))
			}
			return
		}
		want := bytes.Clone(p[:StatsLen])
		// self_registered is a boolean on the Go side; reserved is dropped.
		if s.SelfRegistered {
			ne.PutUint32(want[52:56], 1)
		}
		clear(want[76:80])
		if got := AppendStats(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("re-encoded % x, input % x", got, want)
		}
	})
}
