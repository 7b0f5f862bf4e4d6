package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkVsSink is imp2-record's cost against the C reference consumer
// (tools/nlpeer/nlsink.c, recvmmsg, counts only) behind the same top-speed
// producer (nlsend, blocking sendmmsg over NETLINK_USERSOCK: the consumer
// sets the pace). Each iteration is one round of both, in alternating
// order, IMP2_RECORD_BENCH_N messages each (default 1M); the recorder
// writes a zstd trace. Run it as
//
//	go test -run '^$' -bench VsSink -benchtime 9x ./cmd/record
//
// It prints, per round and as median [min–max] over the rounds, the
// ratios recorder/sink of CPU per frame (the whole process, and the
// receiving thread alone: the recorder's receive loop against the sink's
// only thread) and of throughput; each round also gives the median depth
// of each consumer's receive queue, and the ratios are split by the
// sink's: the kernel's cost per frame is lower from a shallow queue, still
// in the cache, than from a full one, and a consumer that outruns the
// sender keeps its queue shallow. IMP2_RECORD_BENCH_BASE=PATH adds
// another imp2-record build (main's, say) to every round, in turn with
// the two, and prints its ratios to the same sink runs and the
// recorder's to it, round by round: a change measured against its base in
// one run. IMP2_RECORD_BENCH_RATE=R paces nlsend to R messages/s (-r):
// below both consumers' top, where each read takes what arrived since the
// last (see record.Options.Coalesce). CPU per frame is the figure that holds
// on a loaded machine; throughput needs a core for each side to mean
// anything.
func BenchmarkVsSink(b *testing.B) {
	n := envInt("IMP2_RECORD_BENCH_N", 1000000)
	base := os.Getenv("IMP2_RECORD_BENCH_BASE")
	nlsend, nlsink := buildPeers(b, b.TempDir())
	trace := filepath.Join(b.TempDir(), "t.pcapng.zst")
	var rounds []vsRound
	for b.Loop() {
		var r vsRound
		runs := []func(){
			func() { r.sink = sinkRun(b, nlsend, nlsink, n) },
			func() { r.rec, _ = recordRun(b, recordBin, nlsend, trace, n) },
		}
		if base != "" {
			runs = append(runs, func() { r.base, _ = recordRun(b, base, nlsend, trace, n) })
		}
		// Each consumer takes each place in the order in turn.
		for i := range runs {
			runs[(i+len(rounds))%len(runs)]()
		}
		// Printed, not logged: the testing package keeps only the first
		// ten lines a benchmark logs, and the summary comes last.
		fmt.Printf("round %d: %s\n", len(rounds), r.line(n))
		rounds = append(rounds, r)
	}
	cpu := ratioStats(rounds, vsRound.cpuRatio)
	recv := ratioStats(rounds, vsRound.recvRatio)
	rate := ratioStats(rounds, func(r vsRound) float64 { return r.rec.rate / r.sink.rate })
	pace := "top speed"
	if rate := os.Getenv("IMP2_RECORD_BENCH_RATE"); rate != "" {
		pace = rate + "/s"
	}
	b.Logf("VS SINK %d rounds x %d frames at %s, recorder/sink: CPU per frame %s (target <= 1.25), receive thread %s (<= 1.10), throughput %s",
		len(rounds), n, pace, cpu, recv, rate)
	// The split by the sink's regime explains the spread; the figures
	// above, over every round, are the result.
	var full, shallow []vsRound
	for _, r := range rounds {
		if r.sink.queue >= benchRcvBuf/4 {
			full = append(full, r)
		} else {
			shallow = append(shallow, r)
		}
	}
	for _, g := range []struct {
		what   string
		rounds []vsRound
	}{{"full, like the recorder's", full}, {"shallow (it kept up with the sender)", shallow}} {
		if len(g.rounds) > 0 {
			b.Logf("  %d rounds with the sink's queue %s: CPU per frame %s, receive thread %s", len(g.rounds), g.what,
				ratioStats(g.rounds, vsRound.cpuRatio), ratioStats(g.rounds, vsRound.recvRatio))
		}
	}
	if base != "" {
		b.Logf("BASE %s, same rounds, base/sink: CPU per frame %s, receive thread %s, throughput %s; recorder/base: CPU per frame %s, receive thread %s", base,
			ratioStats(rounds, func(r vsRound) float64 { return r.base.cpuRatio(r.sink) }),
			ratioStats(rounds, func(r vsRound) float64 { return r.base.recvRatio(r.sink) }),
			ratioStats(rounds, func(r vsRound) float64 { return r.base.rate / r.sink.rate }),
			ratioStats(rounds, func(r vsRound) float64 { return r.rec.cpuRatio(r.base) }),
			ratioStats(rounds, func(r vsRound) float64 { return r.rec.recvRatio(r.base) }))
	}
	b.ReportMetric(cpu.median, "cpu-ratio")
	b.ReportMetric(recv.median, "recv-cpu-ratio")
	b.ReportMetric(rate.median, "rate-ratio")
	b.ReportMetric(0, "ns/op") // a round's wall time says nothing here
}

// vsRound is one round of the comparison; base is the run of
// IMP2_RECORD_BENCH_BASE's recorder, if given.
type vsRound struct{ sink, rec, base consumerRun }

func (r vsRound) cpuRatio() float64  { return r.rec.cpuRatio(r.sink) }
func (r vsRound) recvRatio() float64 { return r.rec.recvRatio(r.sink) }

func (c consumerRun) cpuRatio(sink consumerRun) float64 {
	return float64(c.cpu) / float64(sink.cpu)
}

func (c consumerRun) recvRatio(sink consumerRun) float64 {
	return float64(c.recvCPU) / float64(sink.recvCPU)
}

func (r vsRound) line(n int) string {
	perFrame := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	l := fmt.Sprintf("sink %.0f/s %.0f ns/frame (queue %s); recorder %.0f/s %.0f ns/frame (receive thread %.0f, queue %s); ratios CPU %.2f, receive %.2f, rate %.2f",
		r.sink.rate, perFrame(r.sink.cpu), queueText(r.sink.queue), r.rec.rate, perFrame(r.rec.cpu), perFrame(r.rec.recvCPU), queueText(r.rec.queue),
		r.cpuRatio(), r.recvRatio(), r.rec.rate/r.sink.rate)
	if r.base.cpu != 0 {
		l += fmt.Sprintf("; base %.0f ns/frame (receive thread %.0f), ratios CPU %.2f, receive %.2f",
			perFrame(r.base.cpu), perFrame(r.base.recvCPU), r.base.cpuRatio(r.sink), r.base.recvRatio(r.sink))
	}
	return l
}

// queueText is a median queue depth in MiB of queue's ("-" if never
// seen queued).
func queueText(queue int) string {
	if queue < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(queue)/(1<<20))
}

// spread is the median and range of per-round ratios.
type spread struct {
	median, min, max float64
	all              []float64
}

func ratioStats(rounds []vsRound, f func(vsRound) float64) spread {
	var s spread
	for _, r := range rounds {
		s.all = append(s.all, f(r))
	}
	if len(s.all) == 0 {
		return s
	}
	s.median, s.min, s.max = median(s.all), slices.Min(s.all), slices.Max(s.all)
	return s
}

func (s spread) String() string {
	return fmt.Sprintf("%.2f [%.2f–%.2f] (%s)", s.median, s.min, s.max, fmtRatios(s.all))
}
