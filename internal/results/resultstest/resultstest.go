// Package resultstest builds synthetic but plausible bench runs from a seeded
// RNG, so the plots and the regression gate can be tested without a kernel.
//
// The model is a single-server queue: the consumer serves events at
// CapacityPPS (less with a consumer delay or ExtraCost per event), latency
// is a lognormal service time plus queueing that grows with utilisation,
// and the receive buffer caps the queue: beyond capacity the surplus is
// dropped and the queue saw-tooths between full and drained, as a congested
// netlink socket does. Each repetition gets its own machine-noise factor.
package resultstest

import (
	"math"
	"math/rand/v2"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/imp2/imp2/internal/results"
)

// Truesize is the receive-buffer cost of one small netlink event (6.18).
const Truesize = 832

// Options shapes a synthetic run; start from Default.
type Options struct {
	Seed        uint64
	Source      string
	Rates       []int
	RcvBufs     []int
	Delays      []time.Duration
	Reps        int
	CapacityPPS float64 // consumer capacity with no delay
	// ExtraCost is added to each event's processing: the injected slowdown.
	ExtraCost time.Duration
	// Noise is the per-repetition machine noise (lognormal sigma).
	Noise float64
	// Events is how many latencies each sample records.
	Events int
	// NoLatency leaves out the histograms (a source without timestamps).
	NoLatency bool
}

// Default is a small sweep that reaches overload at the top rate.
func Default() Options {
	return Options{
		Seed:        1,
		Source:      results.SourceKmod,
		Rates:       []int{2000, 10000, 50000, 100000},
		RcvBufs:     []int{32768, 212992},
		Delays:      []time.Duration{0},
		Reps:        6,
		CapacityPPS: 80000,
		Noise:       0.03,
		Events:      10000,
	}
}

// Run builds a valid run from o.
func Run(o Options) *results.Run {
	rng := rand.New(rand.NewPCG(o.Seed, 0x1a2b))
	run := &results.Run{
		SchemaVersion: results.SchemaVersion,
		ToolVersion:   "synthetic",
		Started:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Environment:   results.Environment{KernelRelease: "6.1.0-synthetic", Machine: "x86_64", CPUs: 2, GoVersion: "go1.26", Hostname: "synth"},
		Source:        results.Source{Kind: o.Source, Emulated: o.Source == results.SourceEmu},
		Params: results.Params{
			RatesPPS: o.Rates, RcvBufs: o.RcvBufs, ConsumerDelays: o.Delays,
			StepDuration: time.Second, Repetitions: o.Reps,
		},
		Overhead: &results.Overhead{Method: "consumer CPU per event with and without latency recording", Without: 410, With: 428, Unit: "ns/event"},
	}
	if o.Source == results.SourceNFLOG {
		run.Params.NFLOGQThreshold = 1
	}
	for _, delay := range o.Delays {
		for _, rcvbuf := range o.RcvBufs {
			for _, rate := range o.Rates {
				st := results.Step{RatePPS: rate, RcvBuf: rcvbuf, ConsumerDelay: delay}
				for rep := range o.Reps {
					st.Samples = append(st.Samples, sample(rng, o, rate, rcvbuf, delay, rep))
				}
				run.Steps = append(run.Steps, st)
			}
		}
	}
	return run
}

func sample(rng *rand.Rand, o Options, rate, rcvbuf int, delay time.Duration, rep int) results.Sample {
	machine := math.Exp(rng.NormFloat64() * o.Noise)
	service := (1/o.CapacityPPS + (delay + o.ExtraCost).Seconds()) * machine // seconds per event
	capacity := 1 / service
	dur := time.Second
	achieved := float64(rate) * (1 - math.Abs(rng.NormFloat64())*0.002)
	sent := int64(achieved * dur.Seconds())
	rho := achieved / capacity
	held := int64(2 * rcvbuf / Truesize) // SO_RCVBUF doubles the request
	var dropped int64
	if rho > 1 {
		dropped = int64(float64(sent) * (1 - 1/rho) * (1 + rng.NormFloat64()*0.01))
	}
	received := sent - dropped
	s := results.Sample{
		Rep: rep, Duration: dur, OfferedPPS: float64(rate), AchievedPPS: achieved,
		Sent: sent, Received: received, DeliveryRatio: float64(received) / float64(sent),
		BurstHeld: &held,
	}
	q, enobufs := queue(rng, rho, int64(2*rcvbuf), dur)
	s.Queue = q
	s.Drops = results.Drops{ModuleEAGAIN: &dropped, MeminfoDrops: ptr(dropped), SeqGaps: ptr(dropped), ENOBUFS: &enobufs}
	s.Drops.Reconcile()
	if !o.NoLatency {
		maxWait := float64(held) * service
		uni := hdrhistogram.New(1, int64(10*time.Second), 3)
		e2e := hdrhistogram.New(1, int64(10*time.Second), 3)
		for range o.Events {
			wait := rng.ExpFloat64() * service * min(rho, 0.98) / (1 - min(rho, 0.98))
			if rho > 1 {
				wait = rng.Float64() * maxWait
			}
			l := (4e-6*math.Exp(rng.NormFloat64()*0.3))*machine + service + min(wait, maxWait)
			ns := int64(l * 1e9)
			_ = uni.RecordValue(ns)
			_ = e2e.RecordValue(ns + int64(3000*math.Exp(rng.NormFloat64()*0.4)))
		}
		s.Unicast, _ = results.NewLatency(uni)
		s.EndToEnd, _ = results.NewLatency(e2e)
	}
	return s
}

// queue draws rmem_alloc every millisecond: low and noisy below capacity; a
// saw-tooth filling to the buffer and draining completely above it (the
// congested socket drops until fully drained). It returns the number of
// fill cycles as the ENOBUFS notifications.
func queue(rng *rand.Rand, rho float64, limit int64, dur time.Duration) (results.Queue, int64) {
	q := results.Queue{RcvBuf: limit}
	var level float64
	filling, cycles := true, int64(0)
	for t := time.Duration(0); t < dur; t += time.Millisecond {
		if rho > 1 {
			step := float64(limit) / 40
			if filling {
				level += step * (1 + rng.Float64())
				if level >= float64(limit) {
					level, filling = float64(limit), false
					cycles++
				}
			} else {
				level -= step * (1 + rng.Float64()) / rho
				if level <= 0 {
					level, filling = 0, true
				}
			}
		} else {
			level = math.Min(float64(limit), float64(Truesize)*rng.ExpFloat64()*rho/(1-min(rho, 0.98)))
		}
		v := int64(level) / Truesize * Truesize
		q.Samples = append(q.Samples, results.QueueSample{Offset: t, RmemAlloc: v})
		q.PeakBytes = max(q.PeakBytes, v)
	}
	return q, cycles
}

func ptr(v int64) *int64 { return &v }
