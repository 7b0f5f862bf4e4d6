package pcapnl

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/imp2/imp2/imp2"
)

// tsharkFields runs tshark on path and returns one []string per frame.
func tsharkFields(t *testing.T, path string, extra []string, fields ...string) [][]string {
	t.Helper()
	tshark := needTool(t, "tshark")
	args := append([]string{"-r", path}, extra...)
	args = append(args, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "Lua") || strings.Contains(s, "rror") {
		t.Fatalf("tshark stderr: %s", s)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		rows = append(rows, strings.Split(line, "|"))
	}
	return rows
}

// TestTsharkReads checks that tshark opens every variant we write, with the
// right frame count, family, direction, sequence numbers and drop counts.
func TestTsharkReads(t *testing.T) {
	needTool(t, "tshark")
	frames := floodTrace(2000, 9)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts WriterOptions
	}{
		{"trace.pcapng", WriterOptions{Compression: None}},
		{"trace.pcapng.zst", WriterOptions{}},
		{"fpf.pcapng.zst", WriterOptions{FramePerFlush: true, FlushBytes: 8 << 10}},
	} {
		path := filepath.Join(dir, tc.name)
		os.WriteFile(path, writeTrace(t, frames, tc.opts), 0o644)
		rows := tsharkFields(t, path, nil, "frame.number", "netlink.family", "frame.packet_flags_direction",
			"netlink.hdr_type", "netlink.hdr_seq", "frame.drop_count", "frame.time_epoch", "frame.interface_name")
		if len(rows) != len(frames) {
			t.Fatalf("%s: tshark shows %d frames, want %d", tc.name, len(rows), len(frames))
		}
		for i, r := range rows {
			f := frames[i]
			h, _ := f.Header()
			dir := "0x00000001"
			if f.Direction == ToKernel {
				dir = "0x00000002"
			}
			drops := ""
			if f.DropCount != 0 {
				drops = strconv.FormatUint(f.DropCount, 10)
			}
			want := []string{strconv.Itoa(i + 1), "0x001f", dir, fmt.Sprintf("0x%04x", h.Type), strconv.Itoa(int(h.Seq)), drops,
				fmt.Sprintf("%d.%09d", f.Time/1e9, f.Time%1e9), "imp2"}
			if strings.Join(r, "|") != strings.Join(want, "|") {
				t.Fatalf("%s frame %d: tshark %q, want %q", tc.name, i+1, r, want)
			}
		}
	}
}

func luaScript(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "tools", "wireshark", "imp2.lua")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLuaDissector runs tshark with tools/wireshark/imp2.lua on a trace with
// every imp2 message kind and checks the decoded fields.
func TestLuaDissector(t *testing.T) {
	needTool(t, "tshark")
	frames := floodTrace(300, 10)
	last := frames[len(frames)-1]
	frames = frames[:len(frames)-1]
	src, dst := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.9")
	st := imp2.Stats{Events: 1001, UnicastOK: 990, EAGAIN: 11, Consumers: 2, SelfRegistered: true, SelfSent: 500, SelfDropped: 3, SelfLastSeq: 503}
	stats := imp2.AppendStats(nil, st)
	statsMsg := append(make([]byte, 16), stats...)
	imp2.PutHeader(statsMsg, imp2.Header{Len: uint32(len(statsMsg)), Type: imp2.TypeStats, Seq: 77, PID: 4242})
	frames = append(frames,
		Frame{Time: last.Time - 3, Direction: ToUser, Family: 31, Data: imp2.AppendEventMessage(nil, 9999, imp2.Event{Src: src, Dest: dst})},
		Frame{Time: last.Time - 2, Direction: ToKernel, Family: 31, Data: imp2.AppendControl(nil, imp2.TypeGetStats, imp2.FlagRequest, 77, 4242)},
		Frame{Time: last.Time - 1, Direction: ToUser, Family: 31, Data: statsMsg},
		Frame{Time: last.Time - 1, Direction: ToUser, Family: 0, Data: imp2.AppendEventMessage(nil, 1, imp2.Event{Src: src, Dest: dst})},
		last)
	path := filepath.Join(t.TempDir(), "lua.pcapng.zst")
	os.WriteFile(path, writeTrace(t, frames, WriterOptions{}), 0o644)
	lua := []string{"-X", "lua_script:" + luaScript(t)}

	rows := tsharkFields(t, path, lua, "imp2.type", "imp2.seq", "imp2.pid", "imp2.src", "imp2.dest", "imp2.tstamp",
		"imp2.ifindex", "imp2.icmp_type", "imp2.icmp_code", "imp2.echo_id", "imp2.echo_seq", "imp2.flags", "imp2.flags.icmp",
		"imp2.ip_len", "imp2.stats.events", "imp2.stats.eagain", "imp2.stats.self_last_seq", "netlink.family")
	if len(rows) != len(frames) {
		t.Fatalf("%d rows, want %d", len(rows), len(frames))
	}
	for i, r := range rows {
		f := frames[i]
		h, err := f.Header()
		if err != nil {
			t.Fatal(err)
		}
		want := make([]string, 18)
		want[17] = fmt.Sprintf("0x%04x", f.Family)
		if f.Family == 31 {
			want[0], want[1], want[2] = strconv.Itoa(int(h.Type)), strconv.Itoa(int(h.Seq)), strconv.Itoa(int(h.PID))
		}
		if ev, err := f.Event(); err == nil {
			want[3], want[4] = ev.Src.String(), ev.Dest.String()
			if ev.Extended {
				want[5], want[6] = strconv.FormatUint(ev.TimeNs, 10), strconv.Itoa(int(ev.IfIndex))
				want[7], want[8] = strconv.Itoa(int(ev.ICMPType)), strconv.Itoa(int(ev.ICMPCode))
				want[9], want[10] = strconv.Itoa(int(ev.ICMPID)), strconv.Itoa(int(ev.ICMPSeq))
				want[11], want[12], want[13] = fmt.Sprintf("0x%04x", ev.Flags), "1", strconv.Itoa(int(ev.IPLen))
			}
		}
		if f.Family == 31 && h.Type == imp2.TypeStats {
			want[14], want[15], want[16] = "1001", "11", "503"
		}
		if strings.Join(r, "|") != strings.Join(want, "|") {
			t.Fatalf("frame %d (%s): tshark\n %q\nwant\n %q", i+1, f.Direction, r, want)
		}
	}

	// The detail view names the protocol and the message types, and the
	// display filter "imp2" selects exactly the imp2 frames.
	tshark := needTool(t, "tshark")
	out, err := exec.Command(tshark, append(lua, "-r", path, "-V")...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(out, []byte("Lua Error")); i >= 0 {
		t.Fatalf("tshark -V: %s", out[max(0, i-2000):min(len(out), i+200)])
	}
	if n := bytes.Count(out, []byte("\nimp2 netlink protocol, ")); n != len(frames)-1 {
		t.Errorf("tshark -V shows %d imp2 trees, want %d", n, len(frames)-1)
	}
	for _, s := range []string{"imp2 netlink protocol, IMP2_U_PID", "imp2 netlink protocol, IMP2_K_MSG", "Source: 192.168.1.10",
		"ICMP type: Echo request (8)", "Family: Unknown (0x001f)", "imp2 netlink protocol, IMP2_CLOSE",
		"imp2 netlink protocol, IMP2_STATS", "Events seen by the hook: 1001", "(legacy)"} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("tshark -V lacks %q:\n%s", s, out)
		}
	}
	n := tsharkFields(t, path, append(lua, "-Y", "imp2"), "frame.number")
	if len(n) != len(frames)-1 {
		t.Errorf("filter imp2 selects %d frames, want %d", len(n), len(frames)-1)
	}
}

// luaCase is one frame of TestLuaColumnsAndFamilies and what tshark with
// imp2.lua shows for it: the columns and a few imp2 fields.
type luaCase struct {
	frame Frame
	want  []string // see luaFields
}

// luaFields are the fields of luaCase.want; a shorter want leaves the
// rest empty.
var luaFields = []string{"_ws.col.Protocol", "_ws.col.Source", "_ws.col.Destination", "imp2.type", "imp2.seq",
	"imp2.echo_seq", "imp2.extension", "imp2.ack.error", "imp2.ack.type", "imp2.stats.self_sent",
	"imp2.rmem_alloc", "imp2.rcvbuf", "imp2.truesize", "imp2.drop_rmem"}

// luaEvent is event n: from 198.18.0.n to 198.19.0.n, echo sequence n.
func luaEvent(n uint32) imp2.Event {
	return imp2.Event{
		Src: netip.AddrFrom4([4]byte{198, 18, 0, byte(n)}), Dest: netip.AddrFrom4([4]byte{198, 19, 0, byte(n)}),
		Extended: true, TimeNs: uint64(n) * 1000, IfIndex: 2, ICMPType: 8, ICMPSeq: uint16(n), Flags: imp2.EventFlagICMP, IPLen: 84,
	}
}

// luaCases builds the frames of family fam: every imp2 message kind, as
// the recorder stores them, and on family 2 the frames of other programs
// that the heuristic must leave alone.
func luaCases(fam uint16) []luaCase {
	t := int64(1_700_000_000_000_000_000)
	ev := func(seq uint32, ext []byte) Frame {
		t += 1000
		m := imp2.AppendEventMessage(nil, seq, luaEvent(seq))
		m = append(m, ext...)
		imp2.PutHeader(m, imp2.Header{Len: uint32(len(m)), Type: imp2.TypeEvent, Seq: seq})
		return Frame{Time: t, Direction: ToUser, Family: fam, Data: m}
	}
	ctl := func(dir Direction, data []byte) Frame {
		t += 1000
		return Frame{Time: t, Direction: dir, Family: fam, Data: data}
	}
	st := imp2.AppendStats(nil, imp2.Stats{Events: 9, UnicastOK: 9, SelfRegistered: true, SelfSent: 7, SelfLastSeq: 7})
	stats := append(make([]byte, imp2.HeaderLen), st...)
	imp2.PutHeader(stats, imp2.Header{Len: uint32(len(stats)), Type: imp2.TypeStats, Seq: 2, PID: 4242})
	reg := imp2.AppendControl(nil, imp2.TypeRegister, imp2.FlagRequest|imp2.FlagAck, 1, 4242)
	ack := make([]byte, imp2.HeaderLen+4)
	imp2.PutHeader(ack, imp2.Header{Len: 36, Type: 2, Seq: 1, PID: 4242})
	ack = append(ack, reg...)
	queue := binary.NativeEndian.AppendUint32(nil, 5000)
	queue = binary.NativeEndian.AppendUint32(queue, 212992)
	queue = binary.NativeEndian.AppendUint32(queue, 768)
	queue = binary.NativeEndian.AppendUint32(queue, 4100)
	legacy := imp2.AppendEventMessage(nil, 8, imp2.Event{Src: luaEvent(8).Src, Dest: luaEvent(8).Dest})
	cs := []luaCase{
		{ctl(ToKernel, reg), []string{"IMP2", "", "", "0", "1", "", "", "", "", ""}},
		{ctl(ToUser, ack), []string{"IMP2", "", "", "2", "1", "", "", "0", "0", ""}},
		{ev(1, nil), []string{"IMP2", "198.18.0.1", "198.19.0.1", "1", "1", "1", "", "", "", ""}},
		// The queue extension (module 2.1, bytes 32-47 of the payload),
		// and a longer one than this script knows: the known fields,
		// then the rest as imp2.extension.
		{ev(2, queue), []string{"IMP2", "198.18.0.2", "198.19.0.2", "1", "2", "2", "", "", "", "", "5000", "212992", "768", "4100"}},
		{ev(3, append(bytes.Clone(queue), 0xde, 0xad, 0xbe, 0xef)), []string{"IMP2", "198.18.0.3", "198.19.0.3", "1", "3", "3", "deadbeef", "", "", "", "5000", "212992", "768", "4100"}},
		{ctl(ToUser, legacy), []string{"IMP2", "198.18.0.8", "198.19.0.8", "1", "8", "", "", "", "", ""}},
		{ctl(ToKernel, imp2.AppendControl(nil, imp2.TypeGetStats, imp2.FlagRequest, 2, 4242)), []string{"IMP2", "", "", "16", "2", "", "", "", "", ""}},
		{ctl(ToUser, stats), []string{"IMP2", "", "", "17", "2", "", "", "", "", "7"}},
		{ctl(ToKernel, imp2.AppendControl(nil, imp2.TypeClose, 0, 3, 4242)), []string{"IMP2", "", "", "2", "3", "", "", "", "", ""}},
	}
	if fam != imp2.UserSockFamily {
		return cs
	}
	// Other programs on NETLINK_USERSOCK: a type imp2 does not have, an
	// event type of a length imp2 never sends, a bare header followed by
	// a foreign message.
	foreign := make([]byte, 20)
	imp2.PutHeader(foreign, imp2.Header{Len: 20, Type: 0x20, Seq: 5})
	odd := make([]byte, 30)
	imp2.PutHeader(odd, imp2.Header{Len: 30, Type: imp2.TypeEvent, Seq: 6})
	mixed := append(imp2.AppendControl(nil, imp2.TypeGetStats, 0, 1, 1), foreign...)
	for _, d := range [][]byte{foreign, odd, mixed} {
		cs = append(cs, luaCase{ctl(ToUser, d), []string{"Netlink", "", "", "", "", "", "", "", "", ""}})
	}
	return cs
}

// TestLuaColumnsAndFamilies writes a family 31 trace and a family 2
// (NETLINK_USERSOCK) trace with the project's Writer and checks through
// tshark -T fields what imp2.lua makes of them: Protocol, Source and
// Destination columns (an event's src and dest), the extension decoded
// by its length, acknowledgements, IMP2_STATS; and on family 2, where no
// preference is set, the heuristic finds every imp2 frame and no other.
func TestLuaColumnsAndFamilies(t *testing.T) {
	needTool(t, "tshark")
	lua := []string{"-X", "lua_script:" + luaScript(t)}
	for _, fam := range []uint16{imp2.DefaultFamily, imp2.UserSockFamily} {
		cases := luaCases(fam)
		frames := make([]Frame, len(cases))
		for i, c := range cases {
			frames[i] = c.frame
		}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("family%d.pcapng", fam))
		os.WriteFile(path, writeTrace(t, frames, WriterOptions{Compression: None, Family: fam}), 0o644)
		rows := tsharkFields(t, path, lua, luaFields...)
		if len(rows) != len(cases) {
			t.Fatalf("family %d: %d rows, want %d", fam, len(rows), len(cases))
		}
		for i, r := range rows {
			want := append(cases[i].want, make([]string, len(luaFields)-len(cases[i].want))...)
			if got, want := strings.Join(r, "|"), strings.Join(want, "|"); got != want {
				t.Errorf("family %d frame %d: tshark\n %s\nwant\n %s\n(%s)", fam, i+1, got, want, strings.Join(luaFields, "|"))
			}
		}
	}
}

// TestLuaQueueExtension: the dissector shows the queue extension of a
// 2.1 module's event, and only there.
func TestLuaQueueExtension(t *testing.T) {
	needTool(t, "tshark")
	src, dst := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.9")
	ev := imp2.Event{Src: src, Dest: dst, Extended: true, ICMPType: 8, Flags: imp2.EventFlagICMP,
		HasQueue: true, RmemAlloc: 16128, RcvBuf: 16384, TrueSize: 768, DropRmem: 16896}
	old := ev
	old.HasQueue = false
	frames := []Frame{
		{Time: 1e9, Direction: ToUser, Family: 31, Data: imp2.AppendEventMessage(nil, 1, ev)},
		{Time: 2e9, Direction: ToUser, Family: 31, Data: imp2.AppendEventMessage(nil, 2, old)},
	}
	path := filepath.Join(t.TempDir(), "queue.pcapng")
	os.WriteFile(path, writeTrace(t, frames, WriterOptions{Compression: None}), 0o644)
	rows := tsharkFields(t, path, []string{"-X", "lua_script:" + luaScript(t)},
		"imp2.seq", "imp2.rmem_alloc", "imp2.rcvbuf", "imp2.truesize", "imp2.drop_rmem", "imp2.extension")
	want := []string{"1|16128|16384|768|16896|", "2|||||"}
	if len(rows) != 2 || strings.Join(rows[0], "|") != want[0] || strings.Join(rows[1], "|") != want[1] {
		t.Errorf("tshark rows %q, want %q", rows, want)
	}
}
