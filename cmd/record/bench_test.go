package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The throughput figures of imp2-record against the C reference peers in
// tools/nlpeer, measured on this machine in one run (the cores are shared:
// compare only within a run). Not a timed test; run it on purpose:
//
//	IMP2_RECORD_BENCH=1 go test -run Throughput -v -timeout 30m ./cmd/record
//
// IMP2_RECORD_BENCH_N (messages per run, default 1000000), _ROUNDS
// (default 5), _PACED (seconds of the paced run, default 30) and _RATE
// (the paced rate; default 80% of the sink's median, the ceiling) tune it.
//
// TestThroughputVsSink: nlsend floods (blocking sendmmsg: the receiver sets
// the pace, nothing is dropped) into nlsink (C, recvmmsg, counts only) and
// into imp2-record writing a zstd trace, alternately, ROUNDS times; the
// figure is the median of the per-round ratios of nlsend's rate.
// Then the paced run: nlsend -d (MSG_DONTWAIT, counts EAGAIN) at 80% of
// the sink's median rate into imp2-record for PACED seconds; every EAGAIN
// at the sender and every sequence gap at the recorder is a
// recorder-caused drop.
func TestThroughputVsSink(t *testing.T) {
	if os.Getenv("IMP2_RECORD_BENCH") == "" {
		t.Skip("set IMP2_RECORD_BENCH=1 to measure (about 2 minutes)")
	}
	n := envInt("IMP2_RECORD_BENCH_N", 1000000)
	rounds := envInt("IMP2_RECORD_BENCH_ROUNDS", 5)
	paced := envInt("IMP2_RECORD_BENCH_PACED", 30)
	nlsend, nlsink := buildPeers(t, t.TempDir())
	trace := filepath.Join(t.TempDir(), "t.pcapng.zst")
	var sinkRates, recRates, ratios []float64
	for round := range rounds {
		sink := sinkRun(t, nlsend, nlsink, n)
		t.Logf("round %d sink:   %s", round, sink.out)
		rec, s := recordRun(t, recordBin, nlsend, trace, n)
		st, _ := os.Stat(trace)
		t.Logf("round %d record: %s / recorder %.0f/s, lost %d, writer stalls %d, %d bytes of trace (%.1f B/frame)",
			round, rec.out, s.Rate, s.Drops.Lost, s.Writer.Stalls, st.Size(), float64(st.Size())/float64(n))
		sinkRates, recRates, ratios = append(sinkRates, sink.rate), append(recRates, rec.rate), append(ratios, rec.rate/sink.rate)
	}
	if rounds > 0 {
		t.Logf("THROUGHPUT %d msgs x %d rounds: nlsend->nlsink median %.0f/s, nlsend->imp2-record (zstd trace) median %.0f/s; per-round ratios %v; median ratio %.2f (target >= 0.90)",
			n, rounds, median(sinkRates), median(recRates), fmtRatios(ratios), median(ratios))
	}

	if paced == 0 || (rounds == 0 && os.Getenv("IMP2_RECORD_BENCH_RATE") == "") {
		return
	}
	rate := envInt("IMP2_RECORD_BENCH_RATE", 0)
	if rate == 0 && rounds > 0 {
		rate = int(0.8 * median(sinkRates))
	}
	port := fmt.Sprint(1000000 + rand.IntN(1000000))
	sender := startPeer(t, nlsend, "-p", port, "-n", fmt.Sprint(rate*paced), "-d", "-r", fmt.Sprint(rate))
	// No -count: the sender's drops would keep it from being reached.
	rec := startRecord(t, "-family", "2", "-peer", port, "-o", trace, "-force", "-stats-timeout", "0", "-q", "-json")
	sender.rate(t)
	eagain := sender.field(t, "eagain")
	time.Sleep(time.Second)
	rec.cmd.Process.Signal(os.Interrupt)
	rec.wait(t)
	s := rec.summary(t)
	t.Logf("PACED %d/s for %d s: %s / recorder received %d, seq gaps %d, lost %d, writer stalls %d, max queued %d of %d bytes",
		rate, paced, sender.out.String(), s.Received, s.Drops.SeqGaps, s.Drops.Lost, s.Writer.Stalls, s.Writer.MaxQueuedBytes, s.Writer.BufferBytes)
	if eagain != 0 || s.Drops.Lost != 0 {
		t.Errorf("paced run: sender EAGAIN %v, recorder lost %d; want 0 and 0", eagain, s.Drops.Lost)
	}
}

type peer struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

func startPeer(t testing.TB, bin string, args ...string) *peer {
	t.Helper()
	p := &peer{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	time.Sleep(100 * time.Millisecond) // let it bind its port
	return p
}

// rate waits for nlsend and returns its "rate" figure.
func (p *peer) rate(t testing.TB) float64 {
	t.Helper()
	if err := <-p.done; err != nil {
		t.Fatalf("%s: %v: %s", p.cmd.Path, err, p.out.String())
	}
	p.out = *bytes.NewBufferString(strings.TrimSpace(p.out.String()))
	return p.field(t, "rate")
}

func (p *peer) field(t testing.TB, name string) float64 {
	t.Helper()
	f := strings.Fields(p.out.String())
	for i := range f[:len(f)-1] {
		if f[i] == name {
			v, err := strconv.ParseFloat(f[i+1], 64)
			if err == nil {
				return v
			}
		}
	}
	t.Fatalf("no %q in %q", name, p.out.String())
	return 0
}

func runRecord(t *testing.T, args ...string) summary {
	t.Helper()
	return runRecordCmd(t, exec.Command(recordBin, append(args, "-q", "-json")...))
}

// runRecordCmd runs imp2-record with -json and returns its summary.
func runRecordCmd(tb testing.TB, cmd *exec.Cmd) summary {
	tb.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != exitOK && code != exitLost {
		tb.Fatalf("imp2-record: %v\n%s", err, stderr.String())
	}
	var s summary
	if err := json.Unmarshal(out, &s); err != nil {
		tb.Fatalf("summary: %v\n%s", err, out)
	}
	return s
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(v []float64) string {
	var b strings.Builder
	for i, r := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.2f", r)
	}
	return b.String()
}

// buildPeers compiles nlsend and nlsink from tools/nlpeer into dir.
func buildPeers(tb testing.TB, dir string) (nlsend, nlsink string) {
	tb.Helper()
	nlsend, nlsink = filepath.Join(dir, "nlsend"), filepath.Join(dir, "nlsink")
	for _, bin := range []string{nlsend, nlsink} {
		src := filepath.Join("..", "..", "tools", "nlpeer", filepath.Base(bin)+".c")
		if out, err := exec.Command("gcc", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
			tb.Fatalf("gcc %s: %v\n%s", src, err, out)
		}
	}
	return nlsend, nlsink
}

// consumerRun is one consumer's run behind a top-speed nlsend.
type consumerRun struct {
	rate    float64       // nlsend's rate: the consumer set the pace
	cpu     time.Duration // the consumer process's user and system time
	recvCPU time.Duration // of its receiving thread
	queue   int           // median depth of its receive queue, bytes (queueWatch)
	out     string        // what the two said
}

// benchRcvBuf is the receive buffer of both consumers in the comparisons:
// imp2-record's default.
const benchRcvBuf = 16 << 20

// senderArgs are nlsend's arguments for a flood of n messages to port: at
// top speed, or at IMP2_RECORD_BENCH_RATE messages/s if set (then both
// consumers keep up, and CPU per frame is what each pays per read at that
// rate, not behind a full queue).
func senderArgs(port string, n int) []string {
	args := []string{"-p", port, "-n", fmt.Sprint(n)}
	if rate := os.Getenv("IMP2_RECORD_BENCH_RATE"); rate != "" {
		args = append(args, "-r", rate)
	}
	return args
}

// sinkRun floods n messages from nlsend into nlsink (one thread: its
// receiving thread is the process).
func sinkRun(tb testing.TB, nlsend, nlsink string, n int) consumerRun {
	tb.Helper()
	port := fmt.Sprint(1000000 + rand.IntN(1000000))
	sender := startPeer(tb, nlsend, senderArgs(port, n)...)
	cmd := exec.Command(nlsink, "-s", port, "-n", fmt.Sprint(n), "-r", fmt.Sprint(benchRcvBuf))
	q := watchQueue()
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("nlsink: %v", err)
	}
	r := consumerRun{rate: sender.rate(tb), cpu: processCPU(cmd.ProcessState), queue: q.median()}
	r.recvCPU = r.cpu
	r.out = sender.out.String() + " / " + strings.TrimSpace(string(out))
	return r
}

// recordRun floods n messages from nlsend into bin (an imp2-record)
// writing a zstd trace, and checks that it recorded them all.
func recordRun(tb testing.TB, bin, nlsend, trace string, n int) (consumerRun, summary) {
	tb.Helper()
	port := fmt.Sprint(1000000 + rand.IntN(1000000))
	sender := startPeer(tb, nlsend, senderArgs(port, n)...)
	cmd := exec.Command(bin, "-family", "2", "-peer", port, "-o", trace, "-force", "-count", fmt.Sprint(n),
		"-rcvbuf", fmt.Sprint(benchRcvBuf), "-stats-timeout", "0", "-q", "-json")
	q := watchQueue()
	s := runRecordCmd(tb, cmd)
	r := consumerRun{rate: sender.rate(tb), cpu: processCPU(cmd.ProcessState),
		recvCPU: time.Duration(s.ReceiveCPU * 1e9), queue: q.median(), out: sender.out.String()}
	// The registration, the events, and IMP2_CLOSE if nlsend, which
	// ends once it has sent them all, was still there to take it.
	if s.ToUser != uint64(n) || s.ToKernel < 1 || s.ToKernel > 2 || s.Drops.Lost != 0 {
		tb.Errorf("recorder wrote %d frames (%d to the kernel), lost %d; want %d or %d and 0", s.Frames, s.ToKernel, s.Drops.Lost, n+1, n+2)
	}
	return r, s
}

func processCPU(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }
