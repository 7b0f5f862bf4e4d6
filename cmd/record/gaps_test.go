package main

import (
	"bytes"
	"encoding/json"
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
)

// committedTrace was recorded from the module through a 16 KiB buffer: its
// nlmsg_seq has gaps, losses of that recording.
const committedTrace = "../../results/default/trace.pcapng.zst"

// sourceEvents reads the events of a trace and counts the gaps in their
// numbering.
func sourceEvents(t *testing.T, path string) (events [][]byte, gaps uint64) {
	t.Helper()
	frames, _, _ := readTraceFile(t, path, false)
	var last uint32
	for _, f := range frames {
		if h := header(t, f); f.Direction == pcapnl.ToUser && h.Type == imp2.TypeEvent {
			if last != 0 && h.Seq > last+1 {
				gaps += uint64(h.Seq - last - 1)
			}
			last = h.Seq
			events = append(events, f.Data)
		}
	}
	return events, gaps
}

// replay is one imp2-replay process serving a trace on a NETLINK_USERSOCK
// port.
type replay struct {
	cmd            *exec.Cmd
	port           uint32
	stdout, stderr bytes.Buffer
	done           chan struct{}
}

// startReplay runs imp2-replay -to netlink on a free port and waits until
// the port is bound, so that a recorder started next finds it.
func startReplay(t *testing.T, args ...string) *replay {
	t.Helper()
	free, err := imp2.Listen(imp2.ServerConfig{}) // a port the kernel says is free
	if err != nil {
		t.Fatal(err)
	}
	rp := &replay{port: free.PortID(), done: make(chan struct{})}
	free.Close()
	rp.cmd = exec.Command(replayBin, append([]string{"-bind", fmt.Sprint(rp.port), "-json"}, args...)...)
	rp.cmd.Stdout, rp.cmd.Stderr = &rp.stdout, &rp.stderr
	if err := rp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { rp.cmd.Wait(); close(rp.done) }()
	t.Cleanup(func() { rp.cmd.Process.Kill(); <-rp.done })
	for deadline := time.Now().Add(20 * time.Second); !netlinkBound(t, imp2.UserSockFamily, rp.port); time.Sleep(10 * time.Millisecond) {
		select {
		case <-rp.done:
			t.Fatalf("imp2-replay ended: %s", rp.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("imp2-replay did not bind port %d: %s", rp.port, rp.stderr.String())
		}
	}
	return rp
}

// netlinkBound reports whether a socket of family holds port
// (/proc/net/netlink).
func netlinkBound(t *testing.T, family int, port uint32) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/net/netlink")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 2 && f[1] == fmt.Sprint(family) && f[2] == fmt.Sprint(int32(port)) {
			return true
		}
	}
	return false
}

func (rp *replay) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-rp.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("imp2-replay did not end; stderr:\n%s", rp.stderr.String())
	}
	return rp.cmd.ProcessState.ExitCode()
}

// replayConsumer is the part of imp2-replay's -json summary these tests
// read: what it did for one consumer.
type replayConsumer struct {
	Port   uint32 `json:"port"`
	Sent   uint64 `json:"sent"`
	EAGAIN uint64 `json:"eagain"`
}

func (rp *replay) consumer(t *testing.T, port uint32) replayConsumer {
	t.Helper()
	var s struct {
		Consumers []replayConsumer `json:"consumers"`
	}
	if err := json.Unmarshal(rp.stdout.Bytes(), &s); err != nil {
		t.Fatalf("imp2-replay -json: %v\n%s\n%s", err, rp.stdout.String(), rp.stderr.String())
	}
	for _, c := range s.Consumers {
		if c.Port == port {
			return c
		}
	}
	t.Fatalf("imp2-replay knows no consumer %d: %s", port, rp.stdout.String())
	return replayConsumer{}
}

// TestReplayedGapsInherited replays the committed trace, whose numbering
// has gaps, at top speed into imp2-record: a faithful copy, nothing lost
// on this leg. The gaps are reported as inherited from the source, the
// exit status is 0, no frame carries a drop count, and the events are the
// source's byte for byte.
func TestReplayedGapsInherited(t *testing.T) {
	events, gaps := sourceEvents(t, committedTrace)
	if gaps == 0 {
		t.Fatal("the committed trace has no gaps")
	}
	rp := startReplay(t, "-i", committedTrace, "-topspeed", "-min-consumers", "1", "-linger", "30s")
	out := filepath.Join(t.TempDir(), "copy.pcapng.zst")
	r := startRecord(t, "-family", "2", "-peer", fmt.Sprint(rp.port), "-o", out, "-count", fmt.Sprint(len(events)), "-json")
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, r.stderr.String())
	}
	if code := rp.wait(t); code != 0 {
		t.Errorf("imp2-replay exit status %d: %s", code, rp.stderr.String())
	}
	s := r.summary(t)
	d := s.Drops
	if d.SeqGaps != gaps || d.Inherited != gaps || d.Lost != 0 || d.Unexplained != 0 || d.InTrace != 0 ||
		s.PeerStats == nil || s.PeerStats.SelfDropped != 0 || s.Events != uint64(len(events)) {
		t.Errorf("summary: events %d, drops %+v, peer %+v; want %d events, %d gaps all inherited, nothing lost", s.Events, d, s.PeerStats, len(events), gaps)
	}
	if want := fmt.Sprintf("seq gaps %d (%d inherited from the source: the peer dropped 0", gaps, gaps); !strings.Contains(r.stderr.String(), want) {
		t.Errorf("text summary does not say %q:\n%s", want, r.stderr.String())
	}
	frames, rd, _ := readTraceFile(t, out, false)
	var got [][]byte
	for _, f := range frames {
		if f.DropCount != 0 {
			t.Errorf("frame %+v carries drop count %d", header(t, f), f.DropCount)
		}
		if h := header(t, f); f.Direction == pcapnl.ToUser && h.Type == imp2.TypeEvent {
			got = append(got, f.Data)
		}
	}
	if len(got) != len(events) {
		t.Fatalf("the copy has %d events, the source %d", len(got), len(events))
	}
	for i := range got {
		if !bytes.Equal(got[i], events[i]) {
			t.Fatalf("event %d: %x, the source has %x", i, got[i], events[i])
		}
	}
	if st := rd.Stats(); len(st) != 1 || st[0].Dropped != 0 {
		t.Errorf("interface statistics %+v; want dropped 0", st)
	}
}

// TestReplayedGapsAndLocalLoss replays the same trace at top speed into a
// recorder with a 32 KiB buffer: the replay drops events to it (EAGAIN).
// Those are losses of this recording (exit status 3, the trace's
// isb_ifdrop), told apart from the inherited gaps by the peer's
// self_dropped. A user-space sender's drops never reach the receiving
// socket (no ENOBUFS, no SO_MEMINFO count; DESIGN §3), so no frame can be
// said to follow one: the per-frame drop counts hold only what the socket
// saw, here nothing (the VM test TestRecordOverflow pins them against the
// module's overruns).
func TestReplayedGapsAndLocalLoss(t *testing.T) {
	events, gaps := sourceEvents(t, committedTrace)
	rp := startReplay(t, "-i", committedTrace, "-topspeed", "-min-consumers", "1", "-linger", "30s")
	out := filepath.Join(t.TempDir(), "copy.pcapng.zst")
	// The replay takes milliseconds; the recorder stops well after it.
	r := startRecord(t, "-family", "2", "-peer", fmt.Sprint(rp.port), "-o", out, "-rcvbuf", "32K", "-duration", "3s", "-json")
	code := r.wait(t)
	rp.wait(t)
	s := r.summary(t)
	c := rp.consumer(t, s.Port)
	d := s.Drops
	t.Logf("replay: sent %d, eagain %d to the recorder; recorder: events %d, drops %+v", c.Sent, c.EAGAIN, s.Events, d)
	if c.EAGAIN == 0 {
		t.Skip("the replay never filled the 64 KiB queue")
	}
	// Seq 1 goes to an empty queue, so the gaps the recorder sees are
	// exactly the source's and the replay's drops.
	if code != exitLost || s.PeerStats == nil || s.PeerStats.SelfDropped != c.EAGAIN || d.Lost != c.EAGAIN ||
		s.Events != c.Sent || s.Events+c.EAGAIN != uint64(len(events)) || d.SeqGaps != gaps+c.EAGAIN || d.Inherited != gaps ||
		d.InTrace != 0 || d.MemInfo != 0 || d.ENOBUFS != 0 {
		t.Errorf("exit %d, events %d, drops %+v, peer %+v; want exit 3, lost = the replay's eagain %d, %d gaps inherited", code, s.Events, d, s.PeerStats, c.EAGAIN, gaps)
	}
	frames, rd, _ := readTraceFile(t, out, false)
	var inTrace uint64
	for _, f := range frames {
		inTrace += f.DropCount
	}
	if inTrace != d.InTrace {
		t.Errorf("drop counts in the trace sum to %d, the summary says %d", inTrace, d.InTrace)
	}
	if st := rd.Stats(); len(st) != 1 || st[0].Dropped != c.EAGAIN {
		t.Errorf("interface statistics %+v; want dropped %d (the replay's eagain)", st, c.EAGAIN)
	}
}

// TestGapsWithoutPeerCounters: a producer whose numbering has gaps
// (frames 1-100, then 151-200) answers IMP2_GET_STATS: the 50 are
// inherited, exit status 0. Without its counters (-stats-timeout 0, or the
// producer gone before the end) they are unexplained: reported as such
// and, since they may be this recording's, exit status 3, which the text
// summary's verdict says beside them; still no frame carries a drop count.
func TestGapsWithoutPeerCounters(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		gone bool
		code int
		text string
	}{
		{"counters", nil, false, exitOK, "seq gaps 50 (50 inherited from the source: the peer dropped 0; 0 of them after the last event read)  enobufs 0 (notifications)  meminfo 0  => lost 0\n"},
		{"not asked", []string{"-stats-timeout", "0"}, false, exitLost, "seq gaps 50 (50 unexplained: no counters from the peer)  enobufs 0 (notifications)  meminfo 0  => lost 0, unexplained 50, counted as lost (exit 3)\n"},
		{"peer gone", nil, true, exitLost, "seq gaps 50 (50 unexplained: no counters from the peer)  enobufs 0 (notifications)  meminfo 0  => lost 0, unexplained 50, counted as lost (exit 3)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newProducer(t)
			out := filepath.Join(t.TempDir(), "t.pcapng.zst")
			r := startRecord(t, p.args(append([]string{"-o", out, "-json"}, c.args...)...)...)
			p.waitConsumers(t, 1)
			var frames [][]byte
			for seq := uint32(1); seq <= 200; seq++ {
				if seq <= 100 || seq > 150 {
					frames = append(frames, imp2.AppendEventMessage(nil, seq, imp2test.Event(seq)))
				}
			}
			if sent, err := p.SendBatch(frames); err != nil || sent != len(frames) {
				t.Fatalf("sent %d of %d: %v", sent, len(frames), err)
			}
			time.Sleep(200 * time.Millisecond)
			if c.gone {
				p.Close()
			}
			r.cmd.Process.Signal(syscall.SIGINT)
			code := r.wait(t)
			s := r.summary(t)
			d := s.Drops
			wantInherited, wantUnexplained := uint64(50), uint64(0)
			if c.code == exitLost {
				wantInherited, wantUnexplained = 0, 50
			}
			if code != c.code || s.ExitCode != code || s.Events != 150 || d.SeqGaps != 50 || d.Lost != 0 || d.Inherited != wantInherited ||
				d.Unexplained != wantUnexplained || d.InTrace != 0 {
				t.Errorf("exit %d (JSON exit_code %d), events %d, drops %+v; want exit %d, 150 events, 50 gaps: %d inherited, %d unexplained", code, s.ExitCode, s.Events, d, c.code, wantInherited, wantUnexplained)
			}
			if !strings.Contains(r.stderr.String(), c.text) {
				t.Errorf("text summary does not say %q:\n%s", c.text, r.stderr.String())
			}
			trace, _, _ := readTraceFile(t, out, false)
			for _, f := range trace {
				if f.DropCount != 0 {
					t.Errorf("frame %+v carries drop count %d", header(t, f), f.DropCount)
				}
			}
		})
	}
}
