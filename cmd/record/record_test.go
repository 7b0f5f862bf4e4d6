package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/record"
)

// checkConversation checks a trace of a recording that ended with the
// statistics exchange and IMP2_CLOSE: register, events numbered from 1,
// GET_STATS, STATS, CLOSE. It returns the events' frames.
func checkConversation(t *testing.T, frames []pcapnl.Frame, port uint32, events int) []pcapnl.Frame {
	t.Helper()
	if len(frames) != events+4 {
		t.Fatalf("trace has %d frames, want %d: register, %d events, stats request and reply, close", len(frames), events+4, events)
	}
	ctrl := func(i int, dir pcapnl.Direction, typ uint16, seq uint32) imp2.Header {
		t.Helper()
		f := frames[i]
		h := header(t, f)
		if f.Direction != dir || f.Family != imp2.UserSockFamily || h.Type != typ || h.Seq != seq || h.PID != port {
			t.Errorf("frame %d: %v family %d %+v; want %v type %d seq %d pid %d", i, f.Direction, f.Family, h, dir, typ, seq, port)
		}
		return h
	}
	ctrl(0, pcapnl.ToKernel, imp2.TypeRegister, 1)
	evs := frames[1 : events+1]
	var last int64
	for i, f := range evs {
		want := imp2.AppendEventMessage(nil, uint32(i+1), imp2test.Event(uint32(i+1)))
		if f.Direction != pcapnl.ToUser || !bytes.Equal(f.Data, want) || f.DropCount != 0 {
			t.Fatalf("event frame %d: %v drops %d %x; want to-user, no drops, %x", i, f.Direction, f.DropCount, f.Data[:16], want[:16])
		}
		if f.Time < last {
			t.Fatalf("event frame %d: time %d before the previous frame's %d", i, f.Time, last)
		}
		last = f.Time
	}
	ctrl(events+1, pcapnl.ToKernel, imp2.TypeGetStats, 2)
	ctrl(events+2, pcapnl.ToUser, imp2.TypeStats, 2)
	ctrl(events+3, pcapnl.ToKernel, imp2.TypeClose, 3)
	st, err := imp2.ParseStats(frames[events+2].Data[imp2.HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if !st.SelfRegistered || st.SelfSent != uint64(events) || st.SelfDropped != 0 || st.SelfLastSeq != uint32(events) {
		t.Errorf("stats reply in the trace: %+v; want self registered, sent %d, dropped 0, last seq %d", st, events, events)
	}
	return evs
}

// checkClosed asserts that the producer saw IMP2_CLOSE from its only
// consumer: imp2.Server removes a registered consumer only on IMP2_CLOSE
// (or on ECONNREFUSED, and the tests send nothing after the recorder ends).
func checkClosed(t *testing.T, p *producer, sent int) {
	t.Helper()
	cs := p.Consumers()
	if len(cs) != 1 || cs[0].Active || cs[0].Sent != uint64(sent) {
		t.Errorf("producer's consumers %+v; want one, closed (IMP2_CLOSE received), sent %d", cs, sent)
	}
}

// TestRecordFromServer records -count events from a NETLINK_USERSOCK
// producer and checks every frame, the statistics and the summary.
func TestRecordFromServer(t *testing.T) {
	p := newProducer(t)
	out := filepath.Join(t.TempDir(), "t.pcapng.zst")
	const n = 5000
	r := startRecord(t, p.args("-o", out, "-count", fmt.Sprint(n), "-json", "-q")...)
	p.waitConsumers(t, 1)
	if sent := p.send(t, n); sent != n {
		t.Fatalf("producer queued %d of %d events (EAGAIN %+v)", sent, n, p.Consumers())
	}
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, r.stderr.String())
	}
	if r.stderr.Len() != 0 {
		t.Errorf("-q printed on stderr: %s", r.stderr.String())
	}
	s := r.summary(t)
	frames, rd, _ := readTraceFile(t, out, false)
	checkConversation(t, frames, s.Port, n)
	if st := rd.Stats(); len(st) != 1 || st[0].Received != n+4 || st[0].Dropped != 0 {
		t.Errorf("interface statistics %+v; want one block, received %d, dropped 0", st, n+4)
	}
	checkClosed(t, p, n)
	if s.Stop != record.StopCount || s.Events != n || s.Received != n || s.Frames != n+4 || s.Drops.Lost != 0 ||
		s.PeerStats == nil || s.PeerStats.SelfSent != n || s.NotRecorded != 0 || s.FileBytes == 0 {
		t.Errorf("summary %+v", s)
	}
}

// TestSignalsEndCleanly: SIGINT and SIGTERM end the recording with a
// complete trace (statistics block, zstd end mark), the final counters
// and IMP2_CLOSE at the producer.
func TestSignalsEndCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			p := newProducer(t)
			out := filepath.Join(t.TempDir(), "t.pcapng.zst")
			r := startRecord(t, p.args("-o", out, "-json")...)
			p.waitConsumers(t, 1)
			const n = 3000
			if sent := p.send(t, n); sent != n {
				t.Fatalf("producer queued %d of %d", sent, n)
			}
			r.cmd.Process.Signal(sig)
			if code := r.wait(t); code != exitOK {
				t.Fatalf("exit status %d, want 0; stderr:\n%s", code, r.stderr.String())
			}
			s := r.summary(t)
			want := map[syscall.Signal]string{syscall.SIGINT: stopSIGINT, syscall.SIGTERM: stopSIGTERM}[sig]
			if s.Stop != want {
				t.Errorf("stop reason %q, want %q", s.Stop, want)
			}
			frames, rd, _ := readTraceFile(t, out, false)
			checkConversation(t, frames, s.Port, n)
			if st := rd.Stats(); len(st) != 1 || st[0].Received != n+4 {
				t.Errorf("interface statistics %+v; want received %d", st, n+4)
			}
			checkClosed(t, p, n)
			if !strings.Contains(r.stderr.String(), "imp2-record: "+out) {
				t.Errorf("no text summary on stderr:\n%s", r.stderr.String())
			}
		})
	}
}

// TestSIGKILLLeavesReadableTrace: a recorder killed mid-run leaves every
// frame flushed before the kill readable by pcapnl and tshark.
func TestSIGKILLLeavesReadableTrace(t *testing.T) {
	p := newProducer(t)
	out := filepath.Join(t.TempDir(), "t.pcapng.zst")
	r := startRecord(t, p.args("-o", out, "-flush", "50ms", "-q")...)
	p.waitConsumers(t, 1)
	const n = 4000
	if sent := p.send(t, n); sent != n {
		t.Fatalf("producer queued %d of %d", sent, n)
	}
	time.Sleep(500 * time.Millisecond) // ten flush intervals
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.wait(t)
	frames, _, err := readTraceFile(t, out, true)
	t.Logf("pcapnl after SIGKILL: %d frames, then %v", len(frames), err)
	if len(frames) != n+1 {
		t.Fatalf("%d frames readable after SIGKILL, want %d (register and every event, all flushed)", len(frames), n+1)
	}
	for i, f := range frames[1:] {
		if h := header(t, f); h.Type != imp2.TypeEvent || h.Seq != uint32(i+1) {
			t.Fatalf("frame %d: %+v, want event seq %d", i+1, h, i+1)
		}
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed")
	}
	cmd := exec.Command("tshark", "-r", out, "-T", "fields", "-e", "frame.number")
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark on the killed recorder's trace: %v\n%s", err, got)
	}
	if lines := strings.Count(string(got), "\n"); lines != n+1 {
		t.Errorf("tshark shows %d frames, want %d", lines, n+1)
	}
}

// TestStdout writes the trace to stdout (a pipe), plain pcapng as
// tcpdump -w - does, and the JSON summary to stderr.
func TestStdout(t *testing.T) {
	p := newProducer(t)
	const n = 100
	r := startRecord(t, p.args("-o", "-", "-count", fmt.Sprint(n), "-json")...)
	p.waitConsumers(t, 1)
	p.send(t, n)
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	var s summary
	if err := jsonUnmarshal(r.stderr.Bytes(), &s); err != nil {
		t.Fatalf("stderr is not the JSON summary: %v\n%s", err, r.stderr.String())
	}
	frames, rd, _ := readTrace(t, &r.stdout, false)
	checkConversation(t, frames, s.Port, n)
	if rd.Compression() != "none" || rd.Format() != "pcapng" { // "-" is a name like any other: plain pcapng
		t.Errorf("stdout: %s %s, want plain pcapng", rd.Compression(), rd.Format())
	}
}

// TestWriterFallsBehind holds the trace's reader (a pipe on stdout) while
// the producer sends, so the queue to the compressing goroutine fills: the
// receive loop waits, the kernel queue takes the backlog, nothing is lost,
// and the summary says the writer fell behind.
func TestWriterFallsBehind(t *testing.T) {
	p := newProducer(t)
	const n = 20000 // 2.3 MB of plain pcapng: far more than the pipe and a 128 KiB queue hold
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	r := startRecordTo(t, pw, p.args("-o", "-", "-compress", "none", "-buffer", "128K", "-count", fmt.Sprint(n), "-json")...)
	pw.Close()
	p.waitConsumers(t, 1)
	if sent := p.send(t, n); sent != n {
		t.Fatalf("producer sent %d of %d", sent, n)
	}
	select {
	case <-r.done:
		t.Fatalf("imp2-record ended while its output was held; stderr:\n%s", r.stderr.String())
	case <-time.After(200 * time.Millisecond):
	}
	var trace bytes.Buffer
	copied := make(chan error)
	go func() {
		_, err := trace.ReadFrom(pr)
		copied <- err
	}()
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	var s summary
	if err := jsonUnmarshal(r.stderr.Bytes(), &s); err != nil {
		t.Fatalf("stderr is not the JSON summary: %v\n%s", err, r.stderr.String())
	}
	if w := s.Writer; !w.FellBehind || w.Stalls == 0 || w.StallSeconds < 0.1 || w.BufferBytes != 128<<10 || s.Drops.Lost != 0 {
		t.Errorf("summary: writer %+v, lost %d; want fell behind for at least the 0.2 s held, a 128 KiB buffer, nothing lost", w, s.Drops.Lost)
	}
	frames, _, _ := readTrace(t, &trace, false)
	checkConversation(t, frames, s.Port, n)
}

// TestProducerDropsCounted: a tiny receive buffer makes the producer's
// sends fail with EAGAIN. The recorder sees them as sequence gaps, the
// producer reports them as self_dropped, and the two agree: losses of this
// recording, exit status 3, the trace's isb_ifdrop. A user-space sender's
// drops never reach SO_MEMINFO or ENOBUFS (DESIGN §3), so no frame can be
// said to follow one and none carries a drop count; the VM test checks all
// three and the per-frame counts against the module.
func TestProducerDropsCounted(t *testing.T) {
	p := newProducer(t)
	out := filepath.Join(t.TempDir(), "t.pcapng.zst")
	r := startRecord(t, p.args("-o", out, "-rcvbuf", "4K", "-json", "-q")...)
	p.waitConsumers(t, 1)
	const n = 20000
	sent := p.send(t, n)
	time.Sleep(200 * time.Millisecond)
	r.cmd.Process.Signal(syscall.SIGINT)
	code := r.wait(t)
	s := r.summary(t)
	cs := p.Consumers()[0]
	t.Logf("sent %d of %d, producer EAGAIN %d; summary drops %+v", sent, n, cs.EAGAIN, s.Drops)
	if cs.EAGAIN == 0 {
		t.Skip("the producer never filled the 8 KiB queue")
	}
	if code != exitLost {
		t.Errorf("exit status %d, want %d (frames lost)", code, exitLost)
	}
	if s.Drops.SeqGaps != cs.EAGAIN || s.PeerStats.SelfDropped != cs.EAGAIN || s.Drops.Lost != cs.EAGAIN || s.Drops.Inherited != 0 ||
		s.Events != uint64(sent) || s.Events+s.Drops.SeqGaps != n || s.Drops.MemInfo != 0 || s.Drops.ENOBUFS != 0 || s.Drops.InTrace != 0 {
		t.Errorf("accountings disagree: events %d, %+v, producer eagain %d sent %d", s.Events, s.Drops, cs.EAGAIN, sent)
	}
	frames, rd, _ := readTraceFile(t, out, false)
	var dropCounts uint64
	for _, f := range frames {
		dropCounts += f.DropCount
	}
	if dropCounts != 0 {
		t.Errorf("drop counts in the trace sum to %d, want 0 (nothing this socket saw)", dropCounts)
	}
	if st := rd.Stats(); len(st) != 1 || st[0].Dropped != cs.EAGAIN {
		t.Errorf("interface statistics %+v; want dropped %d", st, cs.EAGAIN)
	}
}

// TestBadFlags: exit status 2 and a message naming the flag.
func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "-o is required"},
		{[]string{"-o", "x", "-family", "40"}, "-family 40"},
		{[]string{"-o", "x", "-rcvbuf", "lots"}, "-rcvbuf"},
		{[]string{"-o", "x", "-duration", "-1s"}, "-duration"},
		{[]string{"-o", "x", "-count", "many"}, "-count"},
		{[]string{"-o", "x", "-compress", "lz4"}, "-compress"},
		{[]string{"-o", "x", "-peer", "5000000000"}, "-peer"},
		{[]string{"-o", "x", "-snaplen", "8"}, "-snaplen"},
		{[]string{"-o", "x", "-nosuch"}, "-nosuch"},
		{[]string{"-o", "x", "extra"}, `"extra"`},
	} {
		cmd := exec.Command(recordBin, c.args...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != exitUsage || !strings.Contains(string(out), c.want) {
			t.Errorf("%q: exit %d (%v), output %q; want %d naming %q", c.args, code, err, out, exitUsage, c.want)
		}
		if ents, _ := os.ReadDir(cmd.Dir); len(ents) != 0 {
			t.Errorf("%q created %d files", c.args, len(ents))
		}
	}
}

// TestStartErrors: a missing module, a missing peer and an output that
// cannot be created are plain messages with exit status 4. The output is
// opened before the registration: the peer never sees a consumer that was
// not going to record, and a failed start leaves no file behind.
func TestStartErrors(t *testing.T) {
	p := newProducer(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"module not loaded", []string{"-o", filepath.Join(dir, "a.zst")}, "imp2-record: the imp2 module is not loaded for family 31\n"},
		{"no peer", []string{"-family", "2", "-peer", "4000000001", "-o", filepath.Join(dir, "b.zst")}, "nothing is listening on port 4000000001 of netlink family 2"},
		{"output", p.args("-o", filepath.Join(dir, "no", "such", "dir.zst")), "imp2-record: cannot create " + filepath.Join(dir, "no", "such", "dir.zst") + ": no such file or directory\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(recordBin, c.args...)
			out, _ := cmd.CombinedOutput()
			if c.name == "module not loaded" && !bytes.Contains(out, []byte("not loaded")) {
				t.Skipf("family 31 is served on this host: %s", out)
			}
			if code := cmd.ProcessState.ExitCode(); code != exitStart || !bytes.Contains(out, []byte(c.want)) {
				t.Errorf("exit status %d, output %q; want %d and %q", code, out, exitStart, c.want)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the failed starts left %d files in %s", len(ents), dir)
	}
	if cs := p.Consumers(); len(cs) != 0 {
		t.Errorf("after the output error the producer has seen %+v; want no registration", cs)
	}
}

// TestOverwrite: -o over an existing file is refused (exit status 2, one
// line naming the file and -force), before any registration and without
// touching the file; -force overwrites it, but only once the recording
// starts (a failed start leaves it as it was); devices such as /dev/null
// are written without it.
func TestOverwrite(t *testing.T) {
	p := newProducer(t)
	out := filepath.Join(t.TempDir(), "incident.pcapng.zst")
	old := []byte("the only copy of an incident")
	if err := os.WriteFile(out, old, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a recorder that does not refuse waits for an event
	defer cancel()
	cmd := exec.CommandContext(ctx, recordBin, p.args("-o", out, "-count", "1")...)
	msg, _ := cmd.CombinedOutput()
	if want := "imp2-record: -o " + out + ": the file exists; add -force to overwrite it\n"; cmd.ProcessState.ExitCode() != exitUsage || string(msg) != want {
		t.Errorf("exit status %d, output %q; want %d and %q", cmd.ProcessState.ExitCode(), msg, exitUsage, want)
	}
	if cs := p.Consumers(); len(cs) != 0 {
		t.Errorf("the refused run registered: %+v", cs)
	}
	cmd = exec.Command(recordBin, "-family", "2", "-peer", "4000000001", "-o", out, "-force")
	if msg, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != exitStart {
		t.Errorf("-force with no peer: exit status %d (%s), want %d", cmd.ProcessState.ExitCode(), msg, exitStart)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, old) {
		t.Fatalf("the file holds %q after the refused and the failed run; want it untouched", b)
	}

	const n = 10
	r := startRecord(t, p.args("-o", out, "-force", "-count", fmt.Sprint(n), "-json", "-q")...)
	p.waitConsumers(t, 1)
	p.send(t, n)
	if code := r.wait(t); code != exitOK {
		t.Fatalf("-force: exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	frames, _, _ := readTraceFile(t, out, false)
	checkConversation(t, frames, r.summary(t).Port, n)

	r = startRecord(t, p.args("-o", os.DevNull, "-count", fmt.Sprint(n), "-q")...)
	p.waitConsumers(t, 1) // the first recorder has unregistered
	p.send(t, n)
	if code := r.wait(t); code != exitOK {
		t.Errorf("-o /dev/null: exit status %d; stderr:\n%s", code, r.stderr.String())
	}
}

// TestDiskFull records onto a 256 KiB tmpfs until it is full: exit status
// 1, a plain message, IMP2_CLOSE at the producer, a trace that reads
// cleanly up to its last flush (events in order from 1), and a summary
// that counts as written only the frames in the file (zstd: exactly those
// a reader finds; uncompressed: at most, a cut write may hold a few more)
// and the rest as lost to the write error.
func TestDiskFull(t *testing.T) {
	for _, name := range []string{"t.pcapng.zst", "t.pcapng"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", dir).Run() }) // after the trace is closed
			p := newProducer(t)
			out := filepath.Join(dir, name)
			r := startRecord(t, p.args("-o", out, "-flush", "20ms", "-json")...)
			p.waitConsumers(t, 1)
			sent := 0
			for deadline := time.Now().Add(20 * time.Second); ; {
				select {
				case <-r.done:
				default:
					if time.Now().After(deadline) {
						t.Fatal("imp2-record did not fail on a full disk")
					}
					sent += p.send(t, 200)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				break
			}
			msg := r.stderr.String()
			if r.code != exitError || !strings.Contains(msg, "writing "+out+": no space left on device; the trace is valid up to its last flush") {
				t.Fatalf("exit status %d, stderr %q; want %d and the disk-full message", r.code, msg, exitError)
			}
			s := r.summary(t)
			frames, _, err := readTraceFile(t, out, true)
			t.Logf("%d events sent; the full disk kept %d frames, then %v; summary: written %d, write lost %d, received %d", sent, len(frames), err, s.Frames, s.WriteLost, s.Received)
			if len(frames) < 100 {
				t.Errorf("only %d frames readable", len(frames))
			}
			for i, f := range frames[1:] {
				if h := header(t, f); h.Type != imp2.TypeEvent || h.Seq != uint32(i+1) {
					t.Fatalf("frame %d: %+v, want event seq %d", i+1, h, i+1)
				}
			}
			exact := strings.HasSuffix(name, ".zst")
			if s.Frames > uint64(len(frames)) || (exact && s.Frames != uint64(len(frames))) || s.WriteLost == 0 ||
				s.Frames+s.WriteLost < s.Received {
				t.Errorf("summary: written %d, lost to the write error %d, received %d; the file holds %d frames", s.Frames, s.WriteLost, s.Received, len(frames))
			}
			if want := fmt.Sprintf("written   %d frames, %d bytes on disk; %d frames read or sent never reached the trace (write error)", s.Frames, s.FileBytes, s.WriteLost); !strings.Contains(msg, want) {
				t.Errorf("text summary does not say %q:\n%s", want, msg)
			}
			if cs := p.Consumers(); len(cs) != 1 || cs[0].Active {
				t.Errorf("producer's consumers %+v; want the recorder closed (IMP2_CLOSE)", cs)
			}
		})
	}
}
