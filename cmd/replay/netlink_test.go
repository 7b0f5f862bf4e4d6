//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
	"golang.org/x/sys/unix"
)

// Replay into a consumer that records what it receives, as imp2-record
// does (imp2.Conn + pcapnl.Writer): the kernel→user frames of the new trace
// are byte-identical to the input's, in order, and the recorded
// user→kernel frames (the original recorder's IMP2_U_PID and IMP2_CLOSE)
// are not sent.
func TestRoundTripConnWriter(t *testing.T) {
	in, want, _ := writeTrace(t, traceSpec{n: 2000, gap: func(int) time.Duration { return 20 * time.Microsecond }, control: true})
	port := testPort()
	wait := startReplay(t, "-i", in, "-bind", itoa(port), "-wait", "10s")
	c := dialWhenUp(t, port, 4<<20)

	outPath := filepath.Join(t.TempDir(), "rec.pcapng")
	f, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapnl.NewWriter(f, pcapnl.WriterOptions{Family: imp2.UserSockFamily})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range drain(t, c, len(want), 20*time.Second) {
		w.WriteFrame(&pcapnl.Frame{Time: m.at.UnixNano(), Direction: pcapnl.ToUser, Family: imp2.UserSockFamily, Data: m.data})
	}
	w.Close()
	f.Close()
	res := wait()
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if res.summary.FramesSkipped != 2 || res.summary.FramesSent != int64(len(want)) {
		t.Errorf("summary: sent %d skipped %d, want %d and 2", res.summary.FramesSent, res.summary.FramesSkipped, len(want))
	}
	compareTrace(t, outPath, want)
}

// compareTrace checks that the kernel→user frames of the trace at path are
// exactly want.
func compareTrace(t *testing.T, path string, want [][]byte) {
	t.Helper()
	f, err := os.Open(path)
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
		t.Fatalf("reading the recorded trace: %v", err)
	}
	var user [][]byte
	for _, fr := range got {
		if fr.Direction == pcapnl.ToUser {
			user = append(user, fr.Data)
		}
	}
	sameFrames(t, "recorded kernel→user frames", user, want)
}

// sameFrames fails unless got holds exactly the frames of want, in order.
func sameFrames(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: %d differs:\n got %x\nwant %x", what, i, got[i], want[i])
		}
	}
}

// Two consumers registered at once both get every frame, in order.
func TestTwoConsumers(t *testing.T) {
	in, want, _ := writeTrace(t, traceSpec{n: 3000})
	port := testPort()
	wait := startReplay(t, "-i", in, "-bind", itoa(port), "-min-consumers", "2", "-pps", "20000")
	a := dialWhenUp(t, port, 4<<20)
	b := dialWhenUp(t, port, 4<<20)
	type got struct{ r []received }
	ch := make(chan got, 2)
	for _, c := range []*imp2.Conn{a, b} {
		go func() { ch <- got{drain(t, c, len(want), 20*time.Second)} }()
	}
	res := wait()
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for range 2 {
		g := <-ch
		if len(g.r) != len(want) {
			t.Fatalf("a consumer got %d frames, want %d", len(g.r), len(want))
		}
		for i := range want {
			if !bytes.Equal(g.r[i].data, want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	}
	if len(res.summary.Consumers) != 2 || res.summary.EAGAIN != 0 {
		t.Fatalf("summary consumers %+v EAGAIN %d", res.summary.Consumers, res.summary.EAGAIN)
	}
	for _, c := range res.summary.Consumers {
		if c.Sent != uint64(len(want)) || c.EAGAIN != 0 {
			t.Errorf("consumer %+v: want sent %d, EAGAIN 0", c, len(want))
		}
	}
}

// A consumer that stops reading: its queue fills, every later frame is
// refused with EAGAIN and counted, never retried. What it reads afterwards
// plus its EAGAIN count is the whole trace; a draining consumer beside it
// gets everything.
func TestEAGAINMatchesMissed(t *testing.T) {
	const n = 5000
	in, want, _ := writeTrace(t, traceSpec{n: n})
	port := testPort()
	wait := startReplay(t, "-i", in, "-bind", itoa(port), "-min-consumers", "2", "-topspeed")
	stalled := dialWhenUp(t, port, 64<<10) // a few hundred frames at most
	reader := dialWhenUp(t, port, 16<<20)
	ch := make(chan []received, 1)
	go func() { ch <- drain(t, reader, n, 20*time.Second) }()
	res := wait()
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if g := <-ch; len(g) != n {
		t.Errorf("draining consumer got %d of %d", len(g), n)
	}
	got := drain(t, stalled, n, time.Second)
	var st consumerSummary
	for _, c := range res.summary.Consumers {
		if c.Port == stalled.PortID() {
			st = c
		}
	}
	t.Logf("stalled consumer: read %d, summary %+v; total EAGAIN %d", len(got), st, res.summary.EAGAIN)
	if st.EAGAIN == 0 {
		t.Fatal("no EAGAIN counted for the stalled consumer")
	}
	if uint64(len(got)) != st.Sent || st.Sent+st.EAGAIN != n {
		t.Errorf("stalled consumer read %d, sent %d + EAGAIN %d; want read = sent and sent + EAGAIN = %d",
			len(got), st.Sent, st.EAGAIN, n)
	}
	// What it got is the start of the trace: the queue filled and stayed full.
	for i := range got {
		if !bytes.Equal(got[i].data, want[i]) {
			t.Fatalf("stalled consumer frame %d is not input frame %d", i, i)
		}
	}
	if res.summary.EAGAIN != st.EAGAIN {
		t.Errorf("total EAGAIN %d, want the stalled consumer's %d", res.summary.EAGAIN, st.EAGAIN)
	}
}

// No consumer within -wait: a clear error and exit code 4.
func TestNoConsumer(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 10})
	start := time.Now()
	res := startReplay(t, "-i", in, "-bind", itoa(testPort()), "-wait", "300ms")()
	if res.code != exitNoConsumer {
		t.Fatalf("exit %d, want %d; stderr %s", res.code, exitNoConsumer, res.stderr)
	}
	if !bytes.Contains([]byte(res.stderr), []byte("no consumer registered")) {
		t.Errorf("stderr does not say why: %s", res.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// The round trip through the real recorder: imp2-replay → imp2-record
// -family 2 -peer PORT gives a trace whose kernel→user event frames are
// byte-identical to the input's; imp2-record's end-of-run IMP2_GET_STATS
// is answered (replay lingers until it unregisters) and it reports nothing
// lost.
func TestRoundTripImp2Record(t *testing.T) {
	if _, err := os.Stat("../record/main.go"); err != nil {
		t.Skip("cmd/record not in this tree")
	}
	recBin := filepath.Join(t.TempDir(), "imp2-record")
	if out, err := exec.Command("go", "build", "-o", recBin, "../record").CombinedOutput(); err != nil {
		t.Fatalf("building imp2-record: %v\n%s", err, out)
	}
	in, want, _ := writeTrace(t, traceSpec{n: 5000, gap: func(i int) time.Duration { return time.Duration(i%7) * 10 * time.Microsecond }, control: true})
	port := testPort()
	wait := startReplay(t, "-i", in, "-bind", itoa(port), "-wait", "10s", "-linger", "5s")
	outPath := filepath.Join(t.TempDir(), "rec.pcapng.zst")
	var rec *exec.Cmd
	var recOut []byte
	var recErr error
	for range 200 { // until imp2-replay has bound its port
		rec = exec.Command(recBin, "-family", "2", "-peer", itoa(port), "-o", outPath, "-count", strconv.Itoa(len(want)), "-json", "-q")
		recOut, recErr = rec.CombinedOutput()
		if ee, ok := recErr.(*exec.ExitError); ok && ee.ExitCode() == 4 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		break
	}
	res := wait()
	if recErr != nil {
		t.Fatalf("imp2-record: %v\n%s", recErr, recOut)
	}
	t.Logf("imp2-record: %s", bytes.TrimSpace(recOut))
	if res.code != 0 || res.summary.FramesSent != int64(len(want)) || res.summary.EAGAIN != 0 {
		t.Fatalf("imp2-replay exit %d, sent %d, EAGAIN %d: %s", res.code, res.summary.FramesSent, res.summary.EAGAIN, res.stderr)
	}
	f, err := os.Open(outPath)
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
		t.Fatalf("reading imp2-record's trace: %v", err)
	}
	var events [][]byte
	for _, fr := range got {
		if h, err := fr.Header(); err == nil && fr.Direction == pcapnl.ToUser && h.Type == imp2.TypeEvent {
			events = append(events, fr.Data)
		}
	}
	sameFrames(t, "event frames in imp2-record's trace", events, want)
}

// -stats prints progress while replaying; SIGINT stops the replay, prints
// the summary and exits 130.
func TestStatsAndInterrupt(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 100_000})
	port := testPort()
	cmd := exec.Command(replayBin, "-i", in, "-bind", itoa(port), "-pps", "1000", "-stats", "200ms", "-json", "-linger", "0")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := dialWhenUp(t, port, 4<<20)
	_ = c
	time.Sleep(900 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d: %s", err, exitInterrupted, se.String())
	}
	lines := strings.Split(strings.TrimSpace(so.String()), "\n")
	var progress int
	for i, l := range lines {
		// Every line says what it is: a JSON stream of progress lines and
		// the summary, told apart by "type".
		var typed struct{ Type string }
		json.Unmarshal([]byte(l), &typed)
		want := map[bool]string{true: "summary", false: "progress"}[i == len(lines)-1]
		if typed.Type != want {
			t.Errorf("line %d %q: type %q, want %q", i, l, typed.Type, want)
		}
		if strings.Contains(l, `"frames_sent"`) && strings.Contains(l, `"elapsed_s"`) && typed.Type == "progress" {
			progress++
		}
	}
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("summary %q: %v", lines[len(lines)-1], err)
	}
	t.Logf("%d progress lines; summary: sent %d, exit %d, error %q", progress, s.FramesSent, s.ExitCode, s.Error)
	if progress < 2 || s.FramesSent < 200 || s.FramesSent > 2000 || s.ExitCode != exitInterrupted || s.Error != "interrupted" {
		t.Errorf("progress %d, summary %+v", progress, s)
	}
}

// -dest sends to a fixed port without waiting for a registration, as the
// original module did to its one consumer.
func TestFixedDest(t *testing.T) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, imp2.UserSockFamily)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	dest := sa.(*unix.SockaddrNetlink).Pid
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	in, want, _ := writeTrace(t, traceSpec{n: 100, control: true})
	res := startReplay(t, "-i", in, "-dest", itoa(dest), "-wait", "1ms")()
	if res.code != 0 || len(res.summary.Consumers) != 1 || !res.summary.Consumers[0].Fixed || res.summary.Consumers[0].Sent != 100 {
		t.Fatalf("exit %d, consumers %+v: %s", res.code, res.summary.Consumers, res.stderr)
	}
	buf := make([]byte, 4096)
	for i := range want {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

// TestNothingDeliveredSummary: a replay to a fixed port nobody holds
// offers every frame and delivers none; the summary says so (not "sent"),
// and the exit status is 4.
func TestNothingDeliveredSummary(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 20})
	code, out, errOut := runInProcess("-i", in, "-dest", "3999999999", "-wait", "1ms", "-linger", "0", "-topspeed")
	if code != exitNoConsumer || !strings.Contains(out, ": delivered 0, offered 20 frames (read 20,") || strings.Contains(out, "sent 20") {
		t.Errorf("exit %d, summary:\n%s%s\nwant exit %d and \"delivered 0, offered 20 frames\"", code, out, errOut, exitNoConsumer)
	}
}

// TestSeveralConsumersSummary: with two consumers the text summary says
// how many frames went to how many consumers and the deliveries that made
// (it said "delivered 6000, offered 3000 frames"), and every progress
// line is one snapshot: each consumer that was there from the start was
// offered exactly the frames sent so far.
func TestSeveralConsumersSummary(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 3000})
	port := testPort()
	cmd := exec.Command(replayBin, "-i", in, "-bind", itoa(port), "-min-consumers", "2", "-pps", "10000", "-stats", "20ms", "-linger", "0", "-allow-unprivileged")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*imp2.Conn{dialWhenUp(t, port, 4<<20), dialWhenUp(t, port, 4<<20)} {
		go func() { // keep the queue empty; not drain, which may fail the test
			msgs := make([]imp2.Message, 64)
			for i := range msgs {
				msgs[i].Buf = make([]byte, 4096)
			}
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for {
				if _, err := c.ReadBatch(msgs); err != nil {
					return
				}
			}
		}()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, se.String())
	}
	if w := "netlink, pps 10000: offered 3000 frames to 2 consumers: 6000 of 6000 deliveries (read 3000,"; !strings.Contains(so.String(), w) {
		t.Errorf("summary does not say %q:\n%s", w, so.String())
	}
	lines := 0
	for _, l := range strings.Split(so.String(), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[2] != "sent" || !strings.HasSuffix(f[1], "s") {
			continue // not a progress line
		}
		lines++
		sent := strings.TrimSuffix(f[3], ",")
		if n := strings.Count(l, "[port "); n != 2 || strings.Count(l, " sent "+sent+" EAGAIN ") != 2 {
			t.Errorf("progress line %q: the consumers' counts differ from the frames sent", l)
		}
	}
	if lines < 3 {
		t.Errorf("%d progress lines:\n%s", lines, so.String())
	}
}

// TestInterruptWhileWaiting: SIGINT while the replay waits for its
// consumers says "interrupted" and prints the summary (with -json, the
// object, exit_code 130), as for an interrupt during the replay; it said
// "context canceled" and printed no summary.
func TestInterruptWhileWaiting(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 10})
	for _, asJSON := range []bool{false, true} {
		args := []string{in, "-bind", itoa(testPort()), "-wait", "0"}
		if asJSON {
			args = append(args, "-json")
		}
		cmd, wait := startCmd(t, args...)
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		code, stderr := wait(10 * time.Second)
		stdout := cmd.Stdout.(*bytes.Buffer).String()
		if code != exitInterrupted || !strings.Contains(stderr, "imp2-replay: interrupted\n") || strings.Contains(stderr, "context canceled") {
			t.Errorf("-json %v: exit %d, stderr %q; want %d and interrupted", asJSON, code, stderr, exitInterrupted)
		}
		var s summary
		switch {
		case asJSON && (json.Unmarshal([]byte(stdout), &s) != nil || s.ExitCode != exitInterrupted || s.Error != "interrupted" || s.FramesSent != 0):
			t.Errorf("-json: stdout %q, want the summary with exit_code 130", stdout)
		case !asJSON && !strings.Contains(stdout, "imp2-replay: netlink, recorded x1: delivered 0, offered 0 frames"):
			t.Errorf("stdout %q, want the text summary", stdout)
		}
	}
}

// TestNotesQuietAndJSON: the note that the replay waits for consumers is
// left out under -q and is a JSON object under -json (it was a plain line
// under both).
func TestNotesQuietAndJSON(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 10})
	for _, c := range []struct {
		flags string
		want  func(stderr string) bool
	}{
		{"-q", func(se string) bool { return !strings.Contains(se, "waiting for") }},
		{"-json", func(se string) bool {
			var note struct{ Type, Message string }
			line, _, _ := strings.Cut(se, "\n")
			return json.Unmarshal([]byte(line), &note) == nil && note.Type == "log" && strings.Contains(note.Message, "waiting for 1 consumer(s)")
		}},
	} {
		cmd, wait := startCmd(t, in, "-bind", itoa(testPort()), "-wait", "0", c.flags)
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		if code, stderr := wait(10 * time.Second); code != exitInterrupted || !c.want(stderr) {
			t.Errorf("%s: exit %d, stderr %q", c.flags, code, stderr)
		}
	}
}
