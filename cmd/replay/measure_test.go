//go:build linux

package main

import (
	"runtime"

	"golang.org/x/sys/unix"

	"bytes"
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

// TestMeasure produces the figures of the replay note; it takes about a
// minute per round and runs only with IMP2_REPLAY_MEASURE=ROUNDS set:
//
//	IMP2_REPLAY_MEASURE=3 go test -run Measure -v ./cmd/replay
//
// Per round, in one run so that the ratios compare like with like on a
// shared machine:
//   - imp2-replay -topspeed into nlsink vs nlsend (blocking, and -d
//     MSG_DONTWAIT) into nlsink, 1 M 48-byte events, rate as nlsink sees it;
//   - a 10 s trace at about 10k frames/s (gaps uniform in 50–150 µs)
//     replayed as recorded into nlsink, then with -pps 10000: timing error
//     percentiles and end-to-end duration error from the summary.
func TestMeasure(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("IMP2_REPLAY_MEASURE"))
	if rounds <= 0 {
		t.Skip("set IMP2_REPLAY_MEASURE=ROUNDS to measure")
	}
	if out, err := exec.Command("make", "-C", "../../tools/nlpeer").CombinedOutput(); err != nil {
		t.Fatalf("building nlpeer: %v\n%s", err, out)
	}
	nlsend, _ := filepath.Abs("../../tools/nlpeer/nlsend")
	nlsink, _ := filepath.Abs("../../tools/nlpeer/nlsink")
	const n = 300_000
	flood, _, _ := writeTrace(t, traceSpec{n: n})
	rng := rand.New(rand.NewPCG(1, 2))
	tenK, _, _ := writeTrace(t, traceSpec{n: 100_000, gap: func(int) time.Duration {
		return time.Duration(50_000 + rng.IntN(100_001))
	}})
	spin := os.Getenv("IMP2_REPLAY_SPIN")
	extra := []string{}
	if spin != "" {
		extra = append(extra, "-spin", spin)
	}

	sink := func(port uint32, count int) (float64, string) {
		for range 100 {
			out, err := exec.Command(nlsink, "-s", itoa(port), "-n", strconv.Itoa(count), "-r", strconv.Itoa(8<<20), "-i", "1000").Output()
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
				time.Sleep(10 * time.Millisecond) // sender not bound yet
				continue
			}
			f := strings.Fields(string(out))
			if len(f) < 9 {
				t.Fatalf("nlsink: %q %v", out, err)
			}
			rate, _ := strconv.ParseFloat(f[8], 64)
			return rate, strings.TrimSpace(string(out))
		}
		t.Fatal("nlsink never registered")
		return 0, ""
	}
	const short = 300_000
	replay := func(args ...string) (summary, float64, string) {
		port := testPort()
		wait := startReplay(t, append(append([]string{"-bind", itoa(port)}, args...), extra...)...)
		rate, line := sink(port, short)
		res := wait()
		if res.code != 0 {
			t.Fatalf("imp2-replay %q: exit %d: %s", args, res.code, res.stderr)
		}
		return res.summary, rate, line
	}
	ref := func(flags ...string) float64 {
		port := testPort()
		cmd := exec.Command(nlsend, append([]string{"-p", itoa(port), "-n", strconv.Itoa(short)}, flags...)...)
		var so bytes.Buffer
		cmd.Stdout = &so
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rate, line := sink(port, short)
		cmd.Wait()
		t.Logf("  nlsend %v: %s | %s", flags, strings.TrimSpace(so.String()), line)
		return rate
	}
	us := func(ns int64) string { return fmt.Sprintf("%.1f", float64(ns)/1e3) }
	modes := [][]string{{}, {"-pps", "10000"}, {"-rt", "10"}, {"-pps", "10000", "-rt", "10"}}
	if m := os.Getenv("IMP2_REPLAY_MODES"); m != "" { // e.g. "|-rt 10" (| separates modes)
		modes = nil
		for _, s := range strings.Split(m, "|") {
			if s != "none" {
				modes = append(modes, strings.Fields(s))
			}
		}
	}
	// Top speed: short runs (300k events) alternating replay, nlsend -d
	// and nlsend, 5 times, so that the load of the shared machine hits all
	// three alike; the medians and the median of the per-trio ratios are
	// reported. Rates are what nlsink received per second.
	measureTopspeed := func(round int) {
		const k = 5
		var rr, rd, rb, ratioD, ratioB []float64
		for range k {
			s, r, line := replay("-i", flood, "-topspeed", "-limit", strconv.Itoa(short))
			t.Logf("  imp2-replay -topspeed: offered %d at %.0f/s, EAGAIN %d | %s", s.FramesSent, s.RateFPS, s.EAGAIN, line)
			d, b := ref("-d"), ref()
			rr, rd, rb = append(rr, r), append(rd, d), append(rb, b)
			ratioD, ratioB = append(ratioD, r/d), append(ratioB, r/b)
		}
		med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
		t.Logf("  TOPSPEED round %d (median of %d trios): replay %.0f/s, nlsend -d %.0f/s, nlsend %.0f/s; ratio replay/nlsend -d %.2f (all: %.2f), replay/nlsend %.2f (all: %.2f)",
			round, k, med(rr), med(rd), med(rb), med(ratioD), ratioD, med(ratioB), ratioB)
	}
	for round := 1; round <= rounds; round++ {
		t.Logf("round %d", round)
		t.Logf("  HICCUP round %d: %s", round, hiccup(5*time.Second))
		if os.Getenv("IMP2_REPLAY_SKIP_TOPSPEED") == "" {
			measureTopspeed(round)
		}
		for _, mode := range modes {
			port := testPort()
			wait := startReplay(t, append(append([]string{"-i", tenK, "-bind", itoa(port)}, mode...), extra...)...)
			_, line := sink(port, 100_000)
			res := wait()
			e := res.summary.TimingError
			if res.code != 0 || e == nil {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			name := "as recorded"
			if len(mode) > 0 {
				name = strings.Join(mode, " ")
			}
			t.Logf("  TIMING round %d %-12s: %d frames, rate %.1f/s (scheduled %.1f), error µs p50 %s p90 %s p99 %s p99.9 %s max %s, duration error %s µs, EAGAIN %d | %s",
				round, name, res.summary.FramesSent, res.summary.RateFPS, res.summary.TargetFPS,
				us(e.P50), us(e.P90), us(e.P99), us(e.P999), us(e.Max), us(res.summary.DurationErrorNs), res.summary.EAGAIN, line)
		}
	}
}

// hiccup measures what the machine itself does to a busy-waiting
// SCHED_FIFO thread, the floor under any pacer's timing error: it spins
// on the clock for d and reports the gaps between consecutive readings.
func hiccup(d time.Duration) string {
	ch := make(chan string)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		fifo := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 10}, 0) == nil
		var n50, n1m int
		var t50, maxGap time.Duration
		start := time.Now()
		prev := time.Duration(0)
		for prev < d {
			now := time.Since(start)
			if g := now - prev; g > 50*time.Microsecond {
				n50++
				t50 += g
				if g > time.Millisecond {
					n1m++
				}
				maxGap = max(maxGap, g)
			}
			prev = now
		}
		if fifo {
			unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0)
		}
		ch <- fmt.Sprintf("SCHED_FIFO %v spinner over %v: %d stalls > 50µs (%d > 1ms) totalling %v = %.2f%% of the time, longest %v",
			fifo, d, n50, n1m, t50.Round(time.Microsecond), 100*t50.Seconds()/d.Seconds(), maxGap.Round(time.Microsecond))
	}()
	return <-ch
}
