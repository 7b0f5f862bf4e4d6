package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/imp2/imp2/internal/bpfnf"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/internal/results"
)

// removeLeftovers removes what killed runs left (namespaces with their
// veth and nft table) and says so, one line each.
func removeLeftovers(prog *progress) error {
	left, err := netns.RemoveLeftovers(netns.DefaultPrefix)
	for _, l := range left {
		prog.note("removed leftover %s", l)
	}
	return err
}

// sweep runs every step of cfg in a topology it builds and always removes.
// Cancelling ctx stops it at a sample boundary: the sample in progress is
// dropped and the run returned holds the rest, marked partial.
func sweep(ctx context.Context, cfg *Options, prog *progress) (*results.Run, error) {
	topo, src, err := setUp(ctx, cfg, prog)
	if err != nil {
		return nil, err
	}
	defer topo.Close()
	defer src.close()

	run := newRun(cfg)
	run.Steps = stepsOf(cfg)
	prog.begin(len(run.Steps) * cfg.Reps)
	var capt *capture
	if cfg.TraceFrames > 0 && cfg.Source != results.SourceNFLOG {
		capt = newCapture(cfg.TraceFrames, src.family())
	}
	// interrupted ends the sweep when ctx is done: whatever failed then
	// (a sample cut short, a namespace removed under it) is the signal's
	// doing, not a measurement's.
	interrupted := func(running *results.StepKey, rep int) (*results.Run, error) {
		prog.note("%s: stopping; the sample in progress is dropped, what completed is written", signalName(ctx))
		run.MarkPartial(signalName(ctx), running, rep)
		if len(run.Steps) == 0 {
			return nil, ErrNothingCompleted
		}
		return run, run.Validate()
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		// Interleave nothing across steps: each step's samples run back to
		// back so its queue and drop figures belong to one setting.
		for rep := 0; rep < cfg.Reps; rep++ {
			key := st.Key()
			if ctx.Err() != nil {
				return interrupted(nil, 0)
			}
			prog.sample(key, rep)
			spec := sampleSpec{
				rate: st.RatePPS, duration: cfg.Duration, rcvbuf: st.RcvBuf, delay: st.ConsumerDelay,
				noENOBUFS: cfg.NoENOBUFS, latency: true, probe: true,
			}
			// The trace keeps the first sample of the last step: the
			// highest rate, smallest buffer and longest delay asked for.
			if capt != nil && i == len(run.Steps)-1 && rep == 0 {
				spec.capture = capt
			}
			s, _, err := measure(ctx, topo, src, spec)
			if ctx.Err() != nil {
				return interrupted(&key, rep)
			}
			if err != nil {
				return nil, fmt.Errorf("step %s, sample %d: %w", key, rep, err)
			}
			s.Rep = rep
			st.Samples = append(st.Samples, s)
			prog.done(&s)
			// Written at once, so that an interrupted run keeps it too.
			if spec.capture != nil {
				if err := writeTrace(cfg, capt, key); err != nil {
					return nil, err
				}
			}
		}
	}
	if cfg.Overhead {
		prog.note("measuring the consumer's own overhead")
		run.Overhead, err = measureOverhead(ctx, topo, src)
		if ctx.Err() != nil {
			run.Overhead = nil
			return interrupted(nil, 0)
		}
		if err != nil {
			return nil, err
		}
	}
	return run, run.Validate()
}

// setUp removes what an earlier run left, builds the sweep's topology and
// opens cfg's source in it; the caller closes both. The topology is also
// removed at the signal already, so that a kill following it leaves
// nothing behind either. Cancelled before the setup completed, it reports
// ErrNothingCompleted.
func setUp(ctx context.Context, cfg *Options, prog *progress) (*netns.Topology, source, error) {
	if err := removeLeftovers(prog); err != nil {
		return nil, nil, err
	}
	topo, err := benchTopology(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ErrNothingCompleted
		}
		return nil, nil, err
	}
	go func() {
		<-ctx.Done()
		topo.Close()
	}()
	src, err := openSource(ctx, cfg, topo)
	if err != nil {
		topo.Close()
		if ctx.Err() != nil {
			return nil, nil, ErrNothingCompleted
		}
		return nil, nil, err
	}
	return topo, src, nil
}

// newRun is the result of cfg's sweep before its first sample: what ran
// where, with which parameters, from now.
func newRun(cfg *Options) *results.Run {
	run := &results.Run{
		SchemaVersion: results.SchemaVersion,
		ToolVersion:   toolVersion,
		Started:       time.Now().UTC(),
		Environment:   environment(cfg),
		Source:        sourceInfo(cfg),
		Params: results.Params{
			RatesPPS:       cfg.Rates,
			RcvBufs:        cfg.RcvBufs,
			ConsumerDelays: cfg.Delays,
			StepDuration:   cfg.Duration,
			Repetitions:    cfg.Reps,
			NoENOBUFS:      cfg.NoENOBUFS,
		},
	}
	if cfg.Source == results.SourceNFLOG {
		run.Params.NFLOGQThreshold = int(cfg.QThresh)
	}
	return run
}

// environment is where cfg's sweep runs, built by the tool cfg names.
func environment(cfg *Options) results.Environment {
	env := results.HostEnvironment(os.Getenv(guestEnv) != "")
	env.Build = cfg.Build
	return env
}

// writeTrace writes the captured sample's frames into the result
// directory as trace.pcapng.zst.
func writeTrace(cfg *Options, capt *capture, k results.StepKey) error {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	return capt.write(filepath.Join(cfg.Out, TraceFile), "imp2-bench "+cfg.Source+" "+k.String()+" sample 0")
}

// benchTopology builds the namespaces and turns off echo replies in the
// destination: the hook sees only the requests, and under emulation the
// replies' trip back across the veth halved the rate the flood reached.
func benchTopology(ctx context.Context) (*netns.Topology, error) {
	topo, err := netns.New(ctx, netns.DefaultPrefix)
	if err != nil {
		return nil, err
	}
	if err := topo.Dst.Sysctl("net.ipv4.icmp_echo_ignore_all", "1"); err != nil {
		topo.Close()
		return nil, err
	}
	return topo, nil
}

// stepsOf orders the sweep by receive buffer (largest first), delay and
// rate, so each figure's lines run left to right.
func stepsOf(cfg *Options) []results.Step {
	var steps []results.Step
	bufs := slices.Clone(cfg.RcvBufs)
	sort.Sort(sort.Reverse(sort.IntSlice(bufs)))
	for _, b := range bufs {
		for _, d := range cfg.Delays {
			for _, r := range cfg.Rates {
				steps = append(steps, results.Step{RatePPS: r, RcvBuf: b, ConsumerDelay: d})
			}
		}
	}
	return steps
}

func openSource(ctx context.Context, cfg *Options, topo *netns.Topology) (source, error) {
	switch cfg.Source {
	case results.SourceKmod:
		return newKmodSource(topo)
	case results.SourceNFLOG:
		return newNFLOGSource(ctx, topo, cfg.QThresh)
	case results.SourceBPF:
		return newBPFSource(topo, bpfnf.HookNetfilter)
	case results.SourceBPFTC:
		return newBPFSource(topo, bpfnf.HookTCIngress)
	default:
		return &emuSource{dst: topo.Dst}, nil
	}
}

func sourceInfo(cfg *Options) results.Source {
	switch cfg.Source {
	case results.SourceKmod:
		return results.Source{Kind: results.SourceKmod, Detail: "imp2 module, IPv4 PRE_ROUTING hook, netlink unit 31"}
	case results.SourceNFLOG:
		return results.Source{Kind: results.SourceNFLOG, Detail: fmt.Sprintf("nft log group %d at prerouting priority -1, nfnetlink_log qthresh %d", nflogGroup, cfg.QThresh)}
	case results.SourceBPF:
		return results.Source{Kind: results.SourceBPF, Detail: bpfDetail}
	case results.SourceBPFTC:
		return results.Source{Kind: results.SourceBPFTC, Detail: bpfTCDetail}
	default:
		return results.Source{Kind: results.SourceEmu, Emulated: true,
			Detail: "user-space emulation over NETLINK_USERSOCK: no kernel overrun, ENOBUFS or socket drops"}
	}
}

// overheadEvents is the burst the overhead figure drains.
const overheadEvents = 20000

// overheadPairs is how many interleaved (off, on) pairs the overhead
// takes: 10 give a 95% interval from the 2nd to the 9th of the sorted
// differences, so one stalled drain cannot make or hide a result.
const overheadPairs = 10

// measureOverhead fills a large receive queue with a burst, then drains it
// as fast as the consumer can, overheadPairs times with and without
// latency recording, each pair back to back in alternating order, and
// compares the consumer thread's CPU time per event within the pairs
// (pairedOverhead). Draining a full queue leaves out wake-ups and pacing,
// which would hide the recording cost in noise.
func measureOverhead(ctx context.Context, topo *netns.Topology, src source) (*results.Overhead, error) {
	var with, without []float64
	for i := 0; i < 2*overheadPairs; i++ {
		// off, on, on, off, off, on, ...: neither goes first every time.
		latency := (i%2 == 1) != (i/2%2 == 1)
		perEvent, err := drainCost(ctx, topo, src, latency)
		if err != nil {
			return nil, fmt.Errorf("overhead: %w", err)
		}
		if latency {
			with = append(with, perEvent)
		} else {
			without = append(without, perEvent)
		}
	}
	method := fmt.Sprintf("consumer thread CPU time per event draining a queued burst of %d events, latency recording off vs on, %d interleaved pairs (alternating order), median difference with its %.0f%% interval",
		overheadEvents, overheadPairs, 100*overheadConfidence)
	return pairedOverhead(method, "ns/event", without, with), nil
}

func drainCost(ctx context.Context, topo *netns.Topology, src source, latency bool) (float64, error) {
	c, err := src.open(64<<20, true) // room for the whole burst
	if err != nil {
		return 0, err
	}
	defer c.close()
	r, sched, err := burst(ctx, topo, c, overheadEvents)
	if err != nil {
		return 0, err
	}
	done := make(chan floodDone, 1)
	done <- floodDone{r: r}
	st := newStats(latency, pace.Monotonic())
	cost, _, err := st.consume(ctx, c, sched, sampleSpec{latency: latency}, done)
	if err != nil {
		return 0, err
	}
	if cost.events < overheadEvents/2 {
		return 0, fmt.Errorf("only %d of %d events queued", cost.events, overheadEvents)
	}
	return float64(cost.cpu.Nanoseconds()) / float64(cost.events), nil
}
