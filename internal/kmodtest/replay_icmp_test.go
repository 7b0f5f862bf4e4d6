package kmodtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// imp2-replay -to icmp against the real module: recorded events become
// packets with the recorded (spoofed) addresses, sent across a veth into
// the namespace where the module's hook and the consumers are.

// icmpReplaySummary is the part of imp2-replay's -json summary read here.
type icmpReplaySummary struct {
	FramesSent int64 `json:"frames_sent"`
	ICMP       struct {
		Mode       string `json:"mode"`
		Packets    uint64 `json:"packets_sent"`
		SendErrors uint64 `json:"send_errors"`
		Verify     *struct {
			Expected      int64  `json:"expected"`
			Received      int64  `json:"received"`
			Foreign       int64  `json:"foreign"`
			Matched       int64  `json:"matched"`
			Missing       int64  `json:"missing"`
			Extra         int64  `json:"extra"`
			Reordered     int64  `json:"reordered"`
			SeqGaps       uint64 `json:"seq_gaps"`
			ModuleSent    uint64 `json:"module_sent"`
			ModuleDropped uint64 `json:"module_dropped"`
			Unexplained   int64  `json:"missing_unexplained"`
			RcvBuf        int    `json:"rcvbuf"`
			TimeSource    string `json:"time_source"`
			EventTiming   *struct {
				P50 int64 `json:"p50_ns"`
				P99 int64 `json:"p99_ns"`
				Max int64 `json:"max_ns"`
			} `json:"event_timing_error"`
			OK bool `json:"ok"`
		} `json:"verify"`
	} `json:"icmp"`
	RateFPS     float64 `json:"rate_fps"`
	TimingError *struct {
		P50 int64 `json:"p50_ns"`
		P99 int64 `json:"p99_ns"`
		Max int64 `json:"max_ns"`
	} `json:"timing_error"`
	ExitCode int `json:"exit_code"`
}

// icmpTraceEvents are n extended echo events from several addresses, none
// on a local interface: the documentation ranges, a private one and, as
// destinations, loopback and a multicast group too. mixed makes every
// tenth event a legacy 8-byte one and every 25th one without ICMP fields
// (a non-first fragment's).
func icmpTraceEvents(n int, mixed bool) []imp2.Event {
	a := netip.MustParseAddr
	srcs := []netip.Addr{a("203.0.113.7"), a("192.0.2.44"), a("198.51.100.3"), a("203.0.113.200"), a("10.20.30.40")}
	dsts := []netip.Addr{a("192.0.2.1"), a("203.0.113.9"), a("127.1.2.3"), a("198.51.100.250"), a("224.0.0.251"), a("192.0.2.99"), a("8.8.8.8")}
	evs := make([]imp2.Event, n)
	for i := range evs {
		evs[i] = imp2.Event{
			Src: srcs[i%len(srcs)], Dest: dsts[(i/2)%len(dsts)], Extended: true, TimeNs: uint64(i), IfIndex: 2,
			ICMPType: 8, ICMPID: uint16(0x4000 + i%3), ICMPSeq: uint16(i), Flags: imp2.EventFlagICMP, IPLen: uint16(84 + i%64),
		}
		switch {
		case !mixed:
		case i%10 == 9:
			evs[i] = imp2.Event{Src: evs[i].Src, Dest: evs[i].Dest}
		case i%25 == 13:
			evs[i].ICMPType, evs[i].ICMPID, evs[i].ICMPSeq, evs[i].Flags = 0, 0, 0, 0
		}
	}
	return evs
}

// writeICMPTrace writes the events gap apart, as imp2-record would.
func writeICMPTrace(t *testing.T, evs []imp2.Event, gap time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "incident.pcapng.zst")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapnl.NewWriter(f, pcapnl.WriterOptions{Family: imp2.DefaultFamily, Application: "kmodtest"})
	if err != nil {
		t.Fatal(err)
	}
	tm := time.Now().UnixNano()
	for i, e := range evs {
		fr := pcapnl.Frame{Time: tm, Family: imp2.DefaultFamily, Data: imp2.AppendEventMessage(nil, uint32(i+1), e)}
		if err := w.WriteFrame(&fr); err != nil {
			t.Fatal(err)
		}
		tm += int64(gap)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// runReplay runs imp2-replay with -json and returns its exit status and
// summary.
func runReplay(t *testing.T, args ...string) (int, icmpReplaySummary, string) {
	t.Helper()
	cmd := exec.Command(guestReplay, append(args, "-json")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	var s icmpReplaySummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("imp2-replay %v: summary: %v\nstdout: %s\nstderr: %s", args, err, stdout.String(), stderr.String())
	}
	t.Logf("imp2-replay %s\n%s", strings.Join(args, " "), stderr.String())
	return cmd.ProcessState.ExitCode(), s, stdout.String()
}

func legacyLines(evs []imp2.Event) []string {
	var want []string
	for _, e := range evs {
		want = append(want, fmt.Sprintf("src: %v, dest: %v", e.Src, e.Dest))
	}
	return want
}

func addNS(t *testing.T, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// The consumer an incident was recorded from, unmodified (legacy C, family
// 31, port 0), runs in a namespace of its own; imp2-replay -netns-dst
// sends the incident into it at a moderate rate. The consumer prints the
// recorded src/dest sequence, and the verification sees every event once,
// in order (legacy events matched by address, fragments with no ICMP
// fields, as the module reports them).
func TestReplayICMPLegacyConsumer(t *testing.T) {
	const n, gap = 300, 2 * time.Millisecond // 500 events/s
	evs := icmpTraceEvents(n, true)
	trace := writeICMPTrace(t, evs, gap)
	ns := "imp2t-consumer"
	addNS(t, ns)

	cons := exec.Command("ip", "netns", "exec", ns, guestLegacy, strconv.Itoa(n))
	out, err := cons.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Process.Kill(); cons.Wait() })
	lines := make(chan string, n+10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "registered" {
			t.Fatalf("legacy consumer: %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("legacy consumer did not start")
	}

	code, s, raw := runReplay(t, "-i", trace, "-to", "icmp", "-netns-dst", ns, "-min-consumers", "1", "-wait", "5s", "-verify")
	if code != 0 || s.ICMP.Packets != n || s.ICMP.SendErrors != 0 || s.ICMP.Mode != "existing" {
		t.Fatalf("exit %d, summary %s", code, raw)
	}
	v := s.ICMP.Verify
	if v == nil || v.Expected != n || v.Matched != n || v.Missing != 0 || v.Extra != 0 || v.Reordered != 0 ||
		v.Foreign != 0 || v.SeqGaps != 0 || v.ModuleDropped != 0 || !v.OK || v.TimeSource != "kernel" || v.EventTiming == nil {
		t.Fatalf("verification: %s", raw)
	}
	t.Logf("%d events at %.0f/s: event timing error p50 %v p99 %v max %v", n, s.RateFPS,
		time.Duration(v.EventTiming.P50), time.Duration(v.EventTiming.P99), time.Duration(v.EventTiming.Max))
	if e := s.TimingError; e != nil {
		t.Logf("send timing error p50 %v p99 %v max %v", time.Duration(e.P50), time.Duration(e.P99), time.Duration(e.Max))
	}

	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("legacy consumer ended after %d of %d events", len(got), n)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("legacy consumer printed %d of %d events", len(got), n)
		}
	}
	want := legacyLines(evs)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("legacy consumer line %d: %q, want %q", i, got[i], want[i])
		}
	}
	if err := cons.Wait(); err != nil {
		t.Errorf("legacy consumer: %v", err)
	}
	// imp2-replay took away what it added.
	if links := run(t, "ip", "-n", ns, "-o", "link"); strings.Contains(links, "imp2r") {
		t.Errorf("peer interface left behind:\n%s", links)
	}
	if tables := run(t, "ip", "netns", "exec", ns, "nft", "list", "tables"); strings.TrimSpace(tables) != "" {
		t.Errorf("nftables left behind:\n%s", tables)
	}
}

// A verifying consumer with a tiny receive buffer loses events; the report
// counts them exactly: every missing event is a gap in its nlmsg_seq and in
// the module's self_dropped, none is unexplained, none extra. Fresh
// topology.
func TestReplayICMPTinyBuffer(t *testing.T) {
	const n = 3000
	evs := icmpTraceEvents(n, false)
	trace := writeICMPTrace(t, evs, 50*time.Microsecond)
	code, s, raw := runReplay(t, "-i", trace, "-to", "icmp", "-verify", "-verify-rcvbuf", "1", "-pps", "20000")
	v := s.ICMP.Verify
	if v == nil || s.ICMP.Mode != "fresh" || s.ICMP.Packets != n {
		t.Fatalf("exit %d, summary %s", code, raw)
	}
	t.Logf("rcvbuf %d: matched %d, missing %d, seq gaps %d, module dropped %d of %d", v.RcvBuf, v.Matched, v.Missing, v.SeqGaps, v.ModuleDropped, v.ModuleSent+v.ModuleDropped)
	if v.Missing == 0 {
		t.Fatalf("no event lost with a %d-byte buffer at %.0f/s: %s", v.RcvBuf, s.RateFPS, raw)
	}
	if code != 5 || v.OK {
		t.Errorf("exit %d (ok %v), want 5 for missing events", code, v.OK)
	}
	if v.Extra != 0 || v.Matched+v.Missing != n || uint64(v.Missing) != v.SeqGaps || uint64(v.Missing) != v.ModuleDropped ||
		v.ModuleSent+v.ModuleDropped != n || v.Unexplained != 0 || v.Reordered != 0 {
		t.Errorf("losses miscounted: %s", raw)
	}
	// Told to accept them, the run succeeds.
	code, s, raw = runReplay(t, "-i", trace, "-to", "icmp", "-verify", "-verify-rcvbuf", "1", "-pps", "20000", "-verify-tolerate", strconv.Itoa(n))
	if code != 0 || s.ICMP.Verify == nil || !s.ICMP.Verify.OK {
		t.Errorf("with -verify-tolerate %d: exit %d, %s", n, code, raw)
	}
}

// The consumer runs in the root namespace of the machine, which forwards
// and has a default route: the events reach it, and the guard keeps every
// spoofed packet from being routed (not forwarded, not answered).
func TestReplayICMPRootNamespace(t *testing.T) {
	const n = 200
	evs := icmpTraceEvents(n, false)
	trace := writeICMPTrace(t, evs, time.Millisecond)
	run(t, "ip", "link", "add", "rt0", "type", "veth", "peer", "name", "rt1")
	t.Cleanup(func() { exec.Command("ip", "link", "del", "rt0").Run() })
	for _, c := range [][]string{
		{"link", "set", "rt0", "up"}, {"link", "set", "rt1", "up"},
		{"addr", "add", "100.64.0.1/24", "dev", "rt0"},
		{"neigh", "replace", "100.64.0.2", "lladdr", "02:00:00:00:00:02", "dev", "rt0", "nud", "permanent"},
		{"route", "add", "default", "via", "100.64.0.2"},
	} {
		run(t, "ip", c...)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0) })
	before := snmp(t)

	c := dial(t, imp2.Config{RcvBuf: 1 << 20})
	code, s, raw := runReplay(t, "-i", trace, "-to", "icmp", "-netns-dst", "/proc/1/ns/net", "-min-consumers", "1", "-verify")
	if code != 0 || s.ICMP.Verify == nil || s.ICMP.Verify.Matched != n || !s.ICMP.Verify.OK {
		t.Fatalf("exit %d, %s", code, raw)
	}
	got, overruns := readEvents(t, c, n, time.Second)
	if len(got) != n || overruns != 0 {
		t.Fatalf("consumer in the root namespace: %d of %d events, %d overruns", len(got), n, overruns)
	}
	for i, r := range got {
		e := evs[i]
		if r.ev.Src != e.Src || r.ev.Dest != e.Dest || r.ev.ICMPID != e.ICMPID || r.ev.ICMPSeq != e.ICMPSeq || r.ev.IPLen != e.IPLen {
			t.Fatalf("event %d: %v>%v id %d seq %d len %d, want %v>%v id %d seq %d len %d", i,
				r.ev.Src, r.ev.Dest, r.ev.ICMPID, r.ev.ICMPSeq, r.ev.IPLen, e.Src, e.Dest, e.ICMPID, e.ICMPSeq, e.IPLen)
		}
	}
	after := snmp(t)
	for _, k := range []string{"Ip:ForwDatagrams", "Ip:InDelivers", "Icmp:InEchos", "Icmp:OutEchoReps", "Ip:OutRequests"} {
		if after[k] != before[k] {
			t.Errorf("%s moved from %d to %d: a spoofed packet was routed in the root namespace", k, before[k], after[k])
		}
	}
	if links := run(t, "ip", "-o", "link"); strings.Contains(links, "imp2r") {
		t.Errorf("peer interface left behind:\n%s", links)
	}
	if tables := run(t, "nft", "list", "tables"); strings.TrimSpace(tables) != "" {
		t.Errorf("nftables left behind:\n%s", tables)
	}
}

// snmp reads the Ip: and Icmp: counters of /proc/net/snmp.
func snmp(t *testing.T) map[string]int64 {
	t.Helper()
	b := procNet(t, "snmp")
	m := map[string]int64{}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(names) == 0 || names[0] != f[0] {
			names = f
			continue
		}
		for i := 1; i < len(f) && i < len(names); i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			m[strings.TrimSuffix(f[0], ":")+":"+names[i]] = v
		}
		names = nil
	}
	return m
}
