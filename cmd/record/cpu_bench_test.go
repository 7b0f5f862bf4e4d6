package main

import (
	"fmt"
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
// only thread) and of throughput. CPU per frame is the figure that holds
// on a loaded machine; throughput needs a core for each side to mean
// anything.
func BenchmarkVsSink(b *testing.B) {
	n := envInt("IMP2_RECORD_BENCH_N", 1000000)
	nlsend, nlsink := buildPeers(b, b.TempDir())
	trace := filepath.Join(b.TempDir(), "t.pcapng.zst")
	var rounds []vsRound
	for b.Loop() {
		var r vsRound
		if len(rounds)%2 == 0 {
			r.sink = sinkRun(b, nlsend, nlsink, n)
			r.rec, _ = recordRun(b, nlsend, trace, n)
		} else {
			r.rec, _ = recordRun(b, nlsend, trace, n)
			r.sink = sinkRun(b, nlsend, nlsink, n)
		}
		b.Logf("round %d: %s", len(rounds), r.line(n))
		rounds = append(rounds, r)
	}
	cpu := ratioStats(rounds, func(r vsRound) float64 { return r.cpuRatio() })
	recv := ratioStats(rounds, func(r vsRound) float64 { return r.recvRatio() })
	rate := ratioStats(rounds, func(r vsRound) float64 { return r.rec.rate / r.sink.rate })
	b.Logf("VS SINK %d rounds x %d frames, recorder/sink: CPU per frame %s (target <= 1.25), receive thread %s (<= 1.10), throughput %s",
		len(rounds), n, cpu, recv, rate)
	b.ReportMetric(cpu.median, "cpu-ratio")
	b.ReportMetric(recv.median, "recv-cpu-ratio")
	b.ReportMetric(rate.median, "rate-ratio")
	b.ReportMetric(0, "ns/op") // a round's wall time says nothing here
}

// vsRound is one round of the comparison.
type vsRound struct{ sink, rec consumerRun }

func (r vsRound) cpuRatio() float64  { return float64(r.rec.cpu) / float64(r.sink.cpu) }
func (r vsRound) recvRatio() float64 { return float64(r.rec.recvCPU) / float64(r.sink.recvCPU) }

func (r vsRound) line(n int) string {
	perFrame := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	return fmt.Sprintf("sink %.0f/s %.0f ns/frame; recorder %.0f/s %.0f ns/frame (receive thread %.0f); ratios CPU %.2f, receive %.2f, rate %.2f",
		r.sink.rate, perFrame(r.sink.cpu), r.rec.rate, perFrame(r.rec.cpu), perFrame(r.rec.recvCPU),
		r.cpuRatio(), r.recvRatio(), r.rec.rate/r.sink.rate)
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
