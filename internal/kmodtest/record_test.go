package kmodtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// recordSummary is the part of imp2-record's -json summary these tests read.
type recordSummary struct {
	Port     uint32 `json:"port"`
	Received uint64 `json:"received"`
	Events   uint64 `json:"events"`
	Drops    struct {
		ENOBUFS     uint64 `json:"enobufs"`
		SeqGaps     uint64 `json:"seq_gaps"`
		SeqTrailing uint64 `json:"seq_trailing"`
		MemInfo     uint64 `json:"meminfo"`
		Lost        uint64 `json:"lost"`
	} `json:"drops"`
	PeerStats *struct {
		EAGAIN      uint64 `json:"eagain"`
		SelfSent    uint64 `json:"self_sent"`
		SelfDropped uint64 `json:"self_dropped"`
		SelfLastSeq uint32 `json:"self_last_seq"`
	} `json:"peer_stats"`
	ExitCode int `json:"exit_code"`
}

// recorder runs /bin/imp2-record against the module and waits until the
// module counts it as a consumer beside observer (which must be the only
// other one).
type recorder struct {
	cmd            *exec.Cmd
	out            string
	stdout, stderr bytes.Buffer
}

func startRecorder(t *testing.T, observer *imp2.Conn, args ...string) *recorder {
	t.Helper()
	r := &recorder{out: filepath.Join(t.TempDir(), "trace.pcapng.zst")}
	r.cmd = exec.Command(guestRecord, append([]string{"-o", r.out, "-json", "-q"}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); stats(t, observer).Consumers < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("imp2-record did not register; stderr: %s", r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// stop sends SIGINT and returns the exit status and the summary.
func (r *recorder) stop(t *testing.T) (int, recordSummary) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGINT)
	r.cmd.Wait()
	var s recordSummary
	if err := json.Unmarshal(r.stdout.Bytes(), &s); err != nil {
		t.Fatalf("summary: %v\nstdout: %s\nstderr: %s", err, r.stdout.String(), r.stderr.String())
	}
	return r.cmd.ProcessState.ExitCode(), s
}

func (r *recorder) frames(t *testing.T) ([]pcapnl.Frame, *pcapnl.Reader) {
	t.Helper()
	f, err := os.Open(r.out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapnl.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames []pcapnl.Frame
	for {
		fr, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return frames, rd
		}
		if err != nil {
			t.Fatalf("trace: %v", err)
		}
		fr.Data = bytes.Clone(fr.Data)
		frames = append(frames, fr)
	}
}

// waitDrained waits until every unit-31 socket but the kernel's and
// observer's has an empty receive queue (/proc/net/netlink Rmem).
func waitDrained(t *testing.T, observer uint32) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b := procNet(t, "netlink")
		busy := false
		last = ""
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 5 || f[1] != fmt.Sprint(imp2.DefaultFamily) || f[2] == "0" || f[2] == fmt.Sprint(observer) {
				continue
			}
			last += l + "\n"
			busy = busy || f[4] != "0"
		}
		if !busy {
			return
		}
	}
	t.Fatalf("the recorder's queue is not drained after 10 s:\n%s", last)
}

// TestRecordICMP records ICMP traffic through the module: every event is
// in the trace with the right addresses and numbering, the conversation
// (register, ack, stats, close) is there too, and the counts match the
// module's counters.
func TestRecordICMP(t *testing.T) {
	observer := dial(t, imp2.Config{Ack: true, RcvBuf: 1 << 20})
	r := startRecorder(t, observer)
	const pings = 20
	ping(t, 0x4c10, pings)
	obs, _ := readEvents(t, observer, 2*pings, 2*time.Second)
	code, s := r.stop(t)
	if code != 0 {
		t.Fatalf("exit status %d, want 0; stderr: %s", code, r.stderr.String())
	}
	frames, rd := r.frames(t)
	var evs []pcapnl.Frame
	var types []uint16
	for _, f := range frames {
		h, err := f.Header()
		if err != nil {
			t.Fatal(err)
		}
		if f.Direction == pcapnl.ToUser && h.Type == imp2.TypeEvent {
			evs = append(evs, f)
			continue
		}
		types = append(types, h.Type)
	}
	// IMP2_U_PID, its ack (NLMSG_ERROR = 2), IMP2_GET_STATS, IMP2_STATS, IMP2_CLOSE.
	if want := []uint16{imp2.TypeRegister, 2, imp2.TypeGetStats, imp2.TypeStats, imp2.TypeClose}; fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("control frames have types %v, want %v", types, want)
	}
	if len(evs) != 2*pings || len(obs) != 2*pings {
		t.Fatalf("trace has %d events, the observer got %d; want %d each", len(evs), len(obs), 2*pings)
	}
	// Requests and replies each come in order, a reply after its request;
	// how they interleave is up to the softirqs (seen: four requests
	// before the first reply).
	next := map[uint8]uint16{8: 1, 0: 1} // ICMP seq expected next, per ICMP type
	for i, f := range evs {
		h, _ := f.Header()
		e, err := f.Event()
		if err != nil {
			t.Fatal(err)
		}
		want := obs[i].ev
		want.TimeNs = e.TimeNs // each consumer's copy is stamped at its own unicast
		// and describes its own queue; each must have one.
		want.RmemAlloc, want.RcvBuf, want.DropRmem = e.RmemAlloc, e.RcvBuf, e.DropRmem
		if !e.HasQueue || e.RcvBuf == 0 || e.RmemAlloc < e.TrueSize {
			t.Errorf("event %d: queue extension %+v, want rcvbuf and rmem_alloc including the event", i, e)
		}
		src, dst := pingSrc, pingDst
		if e.ICMPType == 0 {
			src, dst = pingDst, pingSrc
		}
		if h.Seq != uint32(i+1) || f.DropCount != 0 || e.Src != src || e.Dest != dst || (e.ICMPType != 8 && e.ICMPType != 0) ||
			e.ICMPID != 0x4c10 || e.ICMPSeq != next[e.ICMPType] || (e.ICMPType == 0 && e.ICMPSeq >= next[8]) || e != want {
			t.Errorf("event %d: seq %d drops %d %+v; want seq %d, %v -> %v, id 0x4c10, the next request (seq %d) or the reply to a request seen (seq %d), as the observer's %+v",
				i, h.Seq, f.DropCount, e, i+1, src, dst, next[8], next[0], obs[i].ev)
		}
		next[e.ICMPType]++
	}
	ps := s.PeerStats
	if ps == nil || ps.SelfSent != 2*pings || ps.SelfDropped != 0 || ps.SelfLastSeq != 2*pings ||
		s.Events != 2*pings || s.Drops.Lost != 0 || s.Drops.ENOBUFS != 0 || s.Drops.MemInfo != 0 || s.Drops.SeqGaps != 0 {
		t.Errorf("summary %+v, peer %+v; want %d events matching self_sent, no drops", s, ps, 2*pings)
	}
	if st := rd.Stats(); len(st) != 1 || st[0].Received != uint64(len(frames)) || st[0].Dropped != 0 {
		t.Errorf("interface statistics %+v; want received %d, dropped 0", st, len(frames))
	}
	if c := stats(t, observer).Consumers; c != 1 {
		t.Errorf("%d consumers after imp2-record ended, want 1 (the observer)", c)
	}
}

// consumerSent reads the module's count of events queued to the consumer
// whose port id is port (/proc/net/imp2).
func consumerSent(t *testing.T, port int) uint64 {
	t.Helper()
	b := procNet(t, "imp2")
	for _, l := range strings.Split(string(b), "\n") {
		var p, sent uint64
		if n, _ := fmt.Sscanf(l, "consumer %d sent %d", &p, &sent); n == 2 && p == uint64(port) {
			return sent
		}
	}
	t.Fatalf("consumer %d not in /proc/net/imp2:\n%s", port, b)
	return 0
}

// TestRecordOverflow stops imp2-record (SIGSTOP) with a tiny receive buffer
// while ICMP floods the hook: ENOBUFS, the sequence gaps, SO_MEMINFO, the
// module's self_dropped and its EAGAIN count must all tell the same loss,
// in the summary and in the trace.
func TestRecordOverflow(t *testing.T) {
	for _, noENOBUFS := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-enobufs=%v", noENOBUFS), func(t *testing.T) {
			observer := dial(t, imp2.Config{Ack: true, RcvBuf: 1 << 20})
			r := startRecorder(t, observer, "-rcvbuf", "4096", fmt.Sprintf("-no-enobufs=%v", noENOBUFS))
			base := stats(t, observer)
			r.cmd.Process.Signal(syscall.SIGSTOP)
			const pings = 200 // 400 events; the queue holds about 10
			ping(t, 0x4c11, pings)
			// The hook may still be working through the packets (softirq
			// under emulation lags the sends): only once the observer has
			// every event is the recorder's loss complete.
			if evs, _ := readEvents(t, observer, 2*pings, 5*time.Second); len(evs) != 2*pings {
				t.Fatalf("observer got %d of %d events", len(evs), 2*pings)
			}
			r.cmd.Process.Signal(syscall.SIGCONT)
			waitDrained(t, observer.PortID())
			// Events after the loss put the gap on a frame of the trace.
			// Ping until the module has queued some to the recorder: its
			// socket may take a moment to leave congestion after SIGCONT.
			after := 0
			for sent0 := consumerSent(t, r.cmd.Process.Pid); after < 20 && consumerSent(t, r.cmd.Process.Pid) == sent0; after++ {
				ping(t, 0x4c12, 1)
				readEvents(t, observer, 2, 2*time.Second)
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			eagain := stats(t, observer).EAGAIN - base.EAGAIN
			code, s := r.stop(t)
			d := s.Drops
			t.Logf("module eagain %d; recorder: events %d, %+v, peer %+v", eagain, s.Events, d, s.PeerStats)
			if d.Lost == 0 {
				t.Fatal("nothing was lost: the queue did not overflow")
			}
			wantENOBUFS := uint64(1)
			if noENOBUFS {
				wantENOBUFS = 0
			}
			if s.PeerStats == nil || d.SeqGaps != eagain || d.MemInfo != eagain || s.PeerStats.SelfDropped != eagain ||
				d.Lost != eagain || d.ENOBUFS != wantENOBUFS || s.Events+eagain != uint64(2*(pings+after)) || d.SeqTrailing != 0 || code != 3 {
				t.Errorf("accountings disagree (exit %d): events %d, %+v, peer %+v, module eagain %d, want enobufs %d",
					code, s.Events, d, s.PeerStats, eagain, wantENOBUFS)
			}
			frames, rd := r.frames(t)
			var inTrace uint64
			for _, f := range frames {
				inTrace += f.DropCount
			}
			if inTrace != d.SeqGaps-d.SeqTrailing {
				t.Errorf("drop counts in the trace sum to %d, want %d", inTrace, d.SeqGaps-d.SeqTrailing)
			}
			if st := rd.Stats(); len(st) != 1 || st[0].Dropped != eagain {
				t.Errorf("interface statistics %+v; want dropped %d", st, eagain)
			}
		})
	}
}
