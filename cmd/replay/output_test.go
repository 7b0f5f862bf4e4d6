//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/replay"
)

// text2pcapTrace converts testdata/events.hex with text2pcap -l 253 (a
// trace made by another tool, without our writer's options and comments).
func text2pcapTrace(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("text2pcap"); err != nil {
		t.Skip("text2pcap not installed (Debian: tshark)")
	}
	out := filepath.Join(t.TempDir(), "events.pcapng")
	if b, err := exec.Command("text2pcap", "-q", "-l", "253", "-t", "ISO", "testdata/events.hex", out).CombinedOutput(); err != nil {
		t.Fatalf("text2pcap: %v\n%s", err, b)
	}
	return out
}

// runInProcess runs imp2-replay's run function and returns exit code,
// stdout and stderr.
func runInProcess(args ...string) (int, string, string) {
	var so, se bytes.Buffer
	code := run(args, strings.NewReader(""), &so, &se)
	return code, so.String(), se.String()
}

func TestTextOutputText2pcap(t *testing.T) {
	in := text2pcapTrace(t)
	want, err := os.ReadFile("testdata/events.text")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runInProcess("-i", in, "-to", "text")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != string(want) {
		t.Errorf("text output:\n%s\nwant (testdata/events.text):\n%s", out, want)
	}
	if !strings.Contains(errOut, "wrote 5 frames") {
		t.Errorf("summary on stderr: %q", errOut)
	}
}

func TestJSONOutputText2pcap(t *testing.T) {
	in := text2pcapTrace(t)
	want, err := os.ReadFile("testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	// Through stdin, as in: imp2-replay -i - -to json < trace | jq
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var so, se bytes.Buffer
	if code := run([]string{"-i", "-", "-to", "json"}, f, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	if so.String() != string(want) {
		t.Errorf("json output:\n%s\nwant (testdata/events.json):\n%s", so.String(), want)
	}
	// Every line is a JSON object with the documented fields.
	lines := strings.Split(strings.TrimSpace(so.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines", len(lines))
	}
	var objs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, k := range []string{"time", "dir", "family", "type", "len", "seq"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q lacks %q", l, k)
			}
		}
		objs = append(objs, m)
	}
	ts, err := time.Parse(time.RFC3339Nano, objs[2]["time"].(string))
	if err != nil || ts.UnixNano() != time.Date(2024, 3, 1, 12, 0, 0, 1250000, time.UTC).UnixNano() {
		t.Errorf("frame 3 time %v (%v)", objs[2]["time"], err)
	}
	if objs[1]["src"] != "10.0.0.1" || objs[1]["dest"] != "10.0.0.2" || objs[2]["icmp_id"] != 4660.0 {
		t.Errorf("decoded fields: %v / %v", objs[1], objs[2])
	}
	if _, ok := objs[3]["src"]; ok {
		t.Errorf("a NETLINK_ROUTE frame was decoded as imp2: %v", objs[3])
	}
}

func TestFilter(t *testing.T) {
	in := text2pcapTrace(t)
	for _, tc := range []struct {
		filter string
		want   []int // lines of testdata/events.text
	}{
		{"", []int{0, 1, 2, 3, 4}},
		{"family=31", []int{0, 1, 2, 4}},
		{"family!=31", []int{3}},
		{"type=event", []int{1, 2, 3}}, // type is the number: family 0's type 1 too
		{"type=event family=31", []int{1, 2}},
		{"dir=kernel", []int{0, 4}},
		{"type=register|close", []int{0, 4}},
		{"src=192.168.0.0/16", []int{2}},
		{"src!=192.168.0.0/16,dir=user", []int{1}},
		{"dir=unknown", []int{3}},
		{"dest=10.0.0.2", []int{1}},
		{"len=20-24", []int{1, 3}},
	} {
		want, _ := os.ReadFile("testdata/events.text")
		lines := strings.SplitAfter(string(want), "\n")
		var exp string
		for _, i := range tc.want {
			exp += lines[i]
		}
		code, out, errOut := runInProcess("-i", in, "-to", "text", "-filter", tc.filter)
		if code != 0 || out != exp {
			t.Errorf("-filter %q: exit %d, got\n%swant\n%s%s", tc.filter, code, out, exp, errOut)
		}
	}
	// A filter that leaves nothing: the input was still read, once, in
	// full, whatever -loop says.
	code, out, errOut := runInProcess("-i", in, "-to", "text", "-filter", "len=9999", "-loop", "3")
	if code != 0 || out != "" || !strings.Contains(errOut, "wrote 0 frames (read 5, filtered 5, ") || !strings.Contains(errOut, "in 1 loop(s)") {
		t.Errorf("-filter len=9999: exit %d, stdout %q, summary %q; want 0 frames in 1 loop", code, out, errOut)
	}
	for _, bad := range []string{"famly=1", "type=bogus", "dir=sideways", "src=10.0.0.300", "len=5-1", "family"} {
		if code, _, errOut := runInProcess("-i", in, "-to", "text", "-filter", bad); code != exitUsage || !strings.Contains(errOut, "-filter") {
			t.Errorf("-filter %q: exit %d, %q; want %d", bad, code, errOut, exitUsage)
		}
	}
}

// -to pcapng rewrites: filtered, re-timed by -speed, looped; direction,
// family and bytes kept.
func TestPcapngRewrite(t *testing.T) {
	in, want, times := writeTrace(t, traceSpec{n: 100, gap: func(i int) time.Duration { return time.Duration(i) * time.Microsecond }, control: true})
	out := filepath.Join(t.TempDir(), "out.pcapng")
	code, _, errOut := runInProcess("-i", in, "-to", "pcapng", "-o", out, "-speed", "2", "-filter", "dir=user", "-loop", "2", "-loop-delay", "1ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapnl.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readTrace(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*len(want) {
		t.Fatalf("%d frames, want %d", len(got), 2*len(want))
	}
	span := (times[len(times)-1] - times[0]) / 2
	for i, fr := range got {
		k := i % len(want)
		loopOff := int64(i/len(want)) * (span + int64(time.Millisecond))
		if wantT := times[0] + loopOff + (times[k]-times[0])/2; fr.Time != wantT {
			t.Fatalf("frame %d time %d, want %d", i, fr.Time, wantT)
		}
		if !bytes.Equal(fr.Data, want[k]) || fr.Direction != pcapnl.ToUser || fr.Family != 31 {
			t.Fatalf("frame %d: %+v", i, fr)
		}
	}
}

// -limit and -duration cut the trace; -pps re-times it exactly.
func TestCutAndRetime(t *testing.T) {
	in, _, times := writeTrace(t, traceSpec{n: 100, gap: func(int) time.Duration { return time.Millisecond }})
	code, out, errOut := runInProcess("-i", in, "-to", "json", "-limit", "7")
	if n := strings.Count(out, "\n"); code != 0 || n != 7 {
		t.Errorf("-limit 7: exit %d, %d lines: %s", code, n, errOut)
	}
	// The 100 frames were read ahead of the limit, and the summary says so.
	if !strings.Contains(errOut, "wrote 7 frames (read 100 with the read-ahead, ") {
		t.Errorf("-limit 7 summary: %q", errOut)
	}
	if _, _, errOut := runInProcess("-i", in, "-to", "json"); !strings.Contains(errOut, "(read 100, ") {
		t.Errorf("whole trace summary: %q", errOut)
	}
	code, out, _ = runInProcess("-i", in, "-to", "json", "-duration", "10500us")
	if n := strings.Count(out, "\n"); code != 0 || n != 11 {
		t.Errorf("-duration 10.5ms over 1 ms gaps: exit %d, %d lines, want 11", code, n)
	}
	code, out, errOut = runInProcess("-i", in, "-to", "json", "-pps", "4", "-limit", "3")
	if code != 0 {
		t.Errorf("-pps 4: exit %d: %s", code, errOut)
	}
	var ts []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct{ Time string }
		json.Unmarshal([]byte(l), &m)
		ts = append(ts, m.Time)
	}
	base := time.Unix(0, times[0]).UTC()
	for i, s := range ts {
		if w := base.Add(time.Duration(i) * 250 * time.Millisecond).Format(replay.TimeFormat); s != w {
			t.Errorf("-pps 4 frame %d at %s, want %s", i, s, w)
		}
	}
}

// A truncated trace: every complete frame is replayed, then a clear error
// and exit code 3.
func TestTruncatedInput(t *testing.T) {
	for _, comp := range []pcapnl.Compression{pcapnl.None, pcapnl.Zstd} {
		in, want, _ := writeTrace(t, traceSpec{n: 20000, compress: comp})
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		cut := filepath.Join(t.TempDir(), "cut.pcapng")
		os.WriteFile(cut, b[:len(b)*2/3+5], 0o644)

		res := startReplay(t, "-i", cut, "-to", "text", "-o", filepath.Join(t.TempDir(), "out.txt"))()
		if res.code != exitInput {
			t.Fatalf("compression %v: exit %d, want %d: %s", comp, res.code, exitInput, res.stderr)
		}
		n := res.summary.FramesSent
		if n == 0 || n >= int64(len(want)) || res.summary.FramesRead != n {
			t.Errorf("compression %v: sent %d, read %d of %d", comp, n, res.summary.FramesRead, len(want))
		}
		if !strings.Contains(res.stderr, "truncated") || !strings.Contains(res.stderr, "complete frame") {
			t.Errorf("stderr does not explain: %s", res.stderr)
		}
		if !strings.Contains(res.summary.Error, "truncated") || res.summary.Loops != 1 {
			t.Errorf("JSON summary: error %q, %d loop(s); want the error and 1 loop", res.summary.Error, res.summary.Loops)
		}
		// The text summary and the error line say it once, in 1 loop.
		code, so, se := runInProcess("-i", cut, "-to", "text", "-o", filepath.Join(t.TempDir(), "out.txt"))
		all := so + se
		if code != exitInput || strings.Count(all, "truncated") != 1 || strings.Count(se, "truncated") != 1 ||
			strings.Contains(all, "pcapnl") || !strings.Contains(se, map[bool]string{false: "at offset ", true: "at decompressed offset "}[comp != pcapnl.None]) || !strings.Contains(so, "in 1 loop(s)") {
			t.Errorf("compression %v, text summary: exit %d, stdout %q, stderr %q", comp, code, so, se)
		}
		t.Logf("compression %v: replayed %d of %d; %s", comp, n, len(want), strings.TrimSpace(res.stderr))
	}
}

// Truncated input into a netlink consumer: it gets the complete frames.
func TestTruncatedNetlink(t *testing.T) {
	in, want, _ := writeTrace(t, traceSpec{n: 3000, compress: pcapnl.None})
	b, _ := os.ReadFile(in)
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	port := testPort()
	wait := startReplay(t, "-i", cut, "-bind", itoa(port), "-topspeed")
	c := dialWhenUp(t, port, 8<<20)
	res := wait()
	got := drain(t, c, len(want), time.Second)
	if res.code != exitInput || res.summary.FramesSent != int64(len(got)) || len(got) == 0 {
		t.Fatalf("exit %d, sent %d, consumer got %d: %s", res.code, res.summary.FramesSent, len(got), res.stderr)
	}
	for i := range got {
		if !bytes.Equal(got[i].data, want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-i", "x", "-to", "carrier-pigeon"},
		{"-i", "x", "-speed", "2", "-pps", "10"},
		{"-i", "x", "-batch", "0"},
		{"-i", "x", "-to", "netlink", "-realtime"},
		{"-i", "x", "-", "-to", "text"}, // a plain argument is an input: stdin cannot be merged
	} {
		if code, _, _ := runInProcess(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := runInProcess("-i", "x", "-to", "pcap", "-o", "x.pcap"); code != exitUsage || !strings.Contains(errOut, "(classic pcap: -to pcapng -o NAME.pcap)") {
		t.Errorf("-to pcap: exit %d, %q; want %d and the hint", code, errOut, exitUsage)
	}
	if _, _, errOut := runInProcess("-i", "x", "-to", "carrier-pigeon"); strings.Contains(errOut, "classic pcap") {
		t.Errorf("-to carrier-pigeon has the pcap hint: %q", errOut)
	}
	for _, args := range [][]string{{"-i", "/nonexistent/trace"}, {"/nonexistent/trace"}, {"-to", "text", "/nonexistent/trace"}} {
		if code, _, errOut := runInProcess(args...); code != exitInput || !strings.Contains(errOut, "input /nonexistent/trace") {
			t.Errorf("%q, a missing input: exit %d, want %d: %s", args, code, exitInput, errOut)
		}
	}
	if code, _, errOut := runInProcess("-i", "testdata/events.hex", "-to", "text"); code != exitInput || !strings.Contains(errOut, "input") {
		t.Errorf("not a trace: exit %d, want %d: %s", code, exitInput, errOut)
	}
}

// Several -i are merged by timestamp into one trace.
func TestMerge(t *testing.T) {
	a, wantA, timesA := writeTrace(t, traceSpec{n: 500, gap: func(int) time.Duration { return 3 * time.Microsecond }})
	b, wantB, timesB := writeTrace(t, traceSpec{n: 700, gap: func(int) time.Duration { return 2 * time.Microsecond }, compress: pcapnl.None})
	out := filepath.Join(t.TempDir(), "merged.pcapng")
	code, _, errOut := runInProcess("-i", a, "-i", b, "-to", "pcapng", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, _ := os.Open(out)
	defer f.Close()
	r, err := pcapnl.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readTrace(t, r)
	if err != nil || len(got) != len(wantA)+len(wantB) {
		t.Fatalf("%d frames (%v), want %d", len(got), err, len(wantA)+len(wantB))
	}
	// Both inputs start at t0: the merge is time-ordered, each input's
	// frames in their order.
	var ia, ib int
	for i, fr := range got {
		if i > 0 && fr.Time < got[i-1].Time {
			t.Fatalf("frame %d goes back in time", i)
		}
		switch {
		case ia < len(wantA) && fr.Time == timesA[ia] && bytes.Equal(fr.Data, wantA[ia]):
			ia++
		case ib < len(wantB) && fr.Time == timesB[ib] && bytes.Equal(fr.Data, wantB[ib]):
			ib++
		default:
			t.Fatalf("frame %d (time %d) is not the next of either input", i, fr.Time)
		}
	}
	// One input truncated: the other is merged whole, then exit 3 naming it.
	raw, _ := os.ReadFile(b)
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	os.WriteFile(cut, raw[:len(raw)/2], 0o644)
	code, out2, errOut := runInProcess("-i", a, "-i", cut, "-to", "json")
	if n := strings.Count(out2, "\n"); code != exitInput || n <= len(wantA) || n >= len(wantA)+len(wantB) || !strings.Contains(errOut, "cut.pcapng is truncated") {
		t.Errorf("truncated second input: exit %d, %d lines: %s", code, n, errOut)
	}
}

// With -limit on a live stream, the replay ends after the limit without
// waiting for more input.
func TestLimitOnLiveStream(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 50, compress: pcapnl.None})
	b, _ := os.ReadFile(in)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	pw.Write(b[:len(b)-100]) // the stream stays open, its last frame incomplete
	cmd := exec.Command(replayBin, "-i", "-", "-to", "json", "-limit", "10")
	cmd.Stdin = pr
	done := make(chan error, 1)
	var so bytes.Buffer
	cmd.Stdout = &so
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || strings.Count(so.String(), "\n") != 10 {
			t.Fatalf("exit %v, %d lines", err, strings.Count(so.String(), "\n"))
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("imp2-replay waited for more input after -limit")
	}
}

// An input that cannot be read is found before the output file is
// created: the file named by -o is left as it was.
func TestBadInputKeepsOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "keep.pcapng")
	if err := os.WriteFile(out, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"pcapng", "text"} {
		if code, _, errOut := runInProcess("-i", "/nonexistent/trace", "-to", to, "-o", out, "-force"); code != exitInput {
			t.Errorf("-to %s: exit %d, want %d: %s", to, code, exitInput, errOut)
		}
		if b, _ := os.ReadFile(out); string(b) != "keep" {
			t.Errorf("-to %s: -o file now %q", to, b)
		}
	}
}

// TestExistingOutputNeedsForce: an existing regular -o file is refused
// (exit 2) and left as it was unless -force, as imp2-record and
// imp2-bench do; it was overwritten silently. A FIFO or a device is
// written as it is.
func TestExistingOutputNeedsForce(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 3})
	out := filepath.Join(t.TempDir(), "old.txt")
	if err := os.WriteFile(out, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runInProcess(in, "-to", "text", "-o", out)
	if code != exitUsage || errOut != "imp2-replay: -o "+out+": the file exists; add -force to overwrite it\n" {
		t.Errorf("exit %d, stderr %q; want %d and one line", code, errOut, exitUsage)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep" {
		t.Errorf("-o file now %q", b)
	}
	if code, _, errOut := runInProcess(in, "-to", "text", "-o", out, "-force"); code != 0 {
		t.Errorf("-force: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(out); strings.Count(string(b), "\n") != 3 {
		t.Errorf("-force: -o file %q, want the 3 lines", b)
	}
	if code, _, errOut := runInProcess(in, "-to", "pcapng", "-o", os.DevNull); code != 0 {
		t.Errorf("-o %s: exit %d: %s", os.DevNull, code, errOut)
	}
}
