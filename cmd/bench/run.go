package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/plots"
	"github.com/imp2/imp2/internal/results"
)

// toolVersion goes into every results.json.
const toolVersion = "0.1.0"

// guestEnv is set by -vm inside the VM, so results say where they ran.
const guestEnv = "IMP2_BENCH_GUEST"

// runConfig is a parsed `imp2-bench run`.
type runConfig struct {
	source      string
	vm          bool
	kernel      string // -vm: matrix kernel (internal/vm/matrix.go); "" the default
	rates       []int
	rcvbufs     []int
	delays      []time.Duration
	duration    time.Duration
	reps        int
	noENOBUFS   bool
	qthresh     uint32
	out         string
	plot        bool
	overhead    bool
	traceFrames int
	args        []string // as given, for -vm to pass on
}

func parseRun(args []string, stderr io.Writer) (*runConfig, error) {
	fs := flag.NewFlagSet("imp2-bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &runConfig{args: args}
	var rates, rcvbufs, delays string
	fs.StringVar(&cfg.source, "source", "kmod", "event source: kmod (the module), nflog (the kernel's NFLOG path) or emu (user-space emulation)")
	fs.BoolVar(&cfg.vm, "vm", false, "run the sweep inside the qemu VM harness (kmod on a host that cannot load modules; nflog there as its peer)")
	fs.StringVar(&cfg.kernel, "kernel", "", "with -vm: boot this kernel of the matrix (6.1, 6.12, 7.3, 7.3-rt; fetched into the cache once) instead of the installed one")
	fs.StringVar(&rates, "rates", "1000,4000,16000", "offered ICMP rates, packets/s, comma-separated")
	fs.StringVar(&rcvbufs, "rcvbufs", "212992,16K", "consumer receive buffers, effective bytes (the kernel's sk_rcvbuf; K and M suffixes), comma-separated")
	fs.StringVar(&delays, "delays", "0", "artificial per-event consumer work (busy loop), Go durations up to "+maxDelay.String()+", comma-separated")
	fs.DurationVar(&cfg.duration, "duration", 500*time.Millisecond, "flood duration of each sample")
	fs.IntVar(&cfg.reps, "reps", 6, "samples per step (compare needs at least 6)")
	fs.BoolVar(&cfg.noENOBUFS, "no-enobufs", false, "set NETLINK_NO_ENOBUFS on the consumer")
	qthresh := fs.Uint("qthresh", 1, "nflog: packets per netlink message (1 = one per event like imp2; 0 = kernel batching)")
	fs.StringVar(&cfg.out, "out", "", "result directory (default results/<source>-<time>)")
	fs.BoolVar(&cfg.plot, "plot", true, "write plots into the result directory")
	fs.BoolVar(&cfg.overhead, "overhead", true, "measure the consumer's latency-recording overhead")
	fs.IntVar(&cfg.traceFrames, "trace-frames", 20000, "frames of one sample kept in trace.pcapng.zst (0: none)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.rates, err = parseInts("-rates", rates); err != nil {
		return nil, err
	}
	if cfg.rcvbufs, err = parseSizes("-rcvbufs", rcvbufs); err != nil {
		return nil, err
	}
	if cfg.delays, err = parseDurations("-delays", delays); err != nil {
		return nil, err
	}
	for _, d := range cfg.delays {
		if d > maxDelay {
			return nil, fmt.Errorf("-delays %v: at most %v of busy work per event (a slower consumer is a stalled one: every sample's drain gives up %v after its flood)", d, maxDelay, drainLimit)
		}
	}
	switch cfg.source {
	case results.SourceKmod, results.SourceNFLOG, results.SourceEmu:
	default:
		return nil, fmt.Errorf("-source %q: want kmod, nflog or emu", cfg.source)
	}
	if cfg.vm && cfg.source == results.SourceEmu {
		return nil, fmt.Errorf("-vm runs kmod or nflog; emu runs on the host")
	}
	if cfg.kernel != "" && !cfg.vm {
		return nil, fmt.Errorf("-kernel %s needs -vm: the host runs its own kernel", cfg.kernel)
	}
	if cfg.duration <= 0 || cfg.duration > 10*time.Minute {
		return nil, fmt.Errorf("-duration %v: want more than 0 and at most 10m", cfg.duration)
	}
	if cfg.reps < 1 {
		return nil, fmt.Errorf("-reps %d: want at least 1", cfg.reps)
	}
	for _, b := range cfg.rcvbufs {
		if b < 4608 {
			return nil, fmt.Errorf("-rcvbufs %d: the kernel's minimum is 4608 bytes", b)
		}
	}
	cfg.qthresh = uint32(*qthresh)
	if cfg.out == "" {
		cfg.out = filepath.Join("results", cfg.source+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	return cfg, nil
}

// maxDelay bounds -delays. The delay is busy work per event on the
// consumer's thread; a second per event already makes a consumer that
// reads at most drainLimit/maxDelay events after the flood before the
// drain gives up, far fewer than the default buffer holds (277).
const maxDelay = time.Second

// runCmd is `imp2-bench run`.
func runCmd(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseRun(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "imp2-bench:", err)
		}
		return exitUsage
	}
	it := notifyInterrupts()
	defer it.stop()
	run, err := measureRun(it, cfg, stderr)
	if errors.Is(err, errNothingCompleted) {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitInterrupted
	}
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitFailure
	}
	if err := writeOutputs(cfg, run, stdout); err != nil {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitFailure
	}
	if run.Partial {
		fmt.Fprintln(stderr, "imp2-bench:", run.Describe())
		return exitInterrupted
	}
	return exitOK
}

// measureRun runs cfg's sweep, inside the VM with -vm, until it ends or
// SIGINT/SIGTERM arrives: then the run holds the samples that completed
// and is marked partial, or the error is errNothingCompleted. The
// topology is removed either way.
func measureRun(it *interrupts, cfg *runConfig, stderr io.Writer) (*results.Run, error) {
	if cfg.vm {
		return runInVM(it, cfg, stderr)
	}
	return sweep(it.ctx, cfg, newProgress(stderr))
}

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
func sweep(ctx context.Context, cfg *runConfig, prog *progress) (*results.Run, error) {
	if err := removeLeftovers(prog); err != nil {
		return nil, err
	}
	topo, err := benchTopology(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errNothingCompleted
		}
		return nil, err
	}
	defer topo.Close()
	// Removed at the signal already, so that a kill following it leaves
	// nothing behind either.
	go func() {
		<-ctx.Done()
		topo.Close()
	}()

	src, err := openSource(ctx, cfg, topo)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errNothingCompleted
		}
		return nil, err
	}
	defer src.close()

	run := &results.Run{
		SchemaVersion: results.SchemaVersion,
		ToolVersion:   toolVersion,
		Started:       time.Now().UTC(),
		Environment:   results.HostEnvironment(os.Getenv(guestEnv) != ""),
		Source:        sourceInfo(cfg),
		Params: results.Params{
			RatesPPS:       cfg.rates,
			RcvBufs:        cfg.rcvbufs,
			ConsumerDelays: cfg.delays,
			StepDuration:   cfg.duration,
			Repetitions:    cfg.reps,
			NoENOBUFS:      cfg.noENOBUFS,
		},
	}
	if cfg.source == results.SourceNFLOG {
		run.Params.NFLOGQThreshold = int(cfg.qthresh)
	}

	run.Steps = stepsOf(cfg)
	prog.begin(len(run.Steps) * cfg.reps)
	var capt *capture
	if cfg.traceFrames > 0 && cfg.source != results.SourceNFLOG {
		capt = newCapture(cfg.traceFrames, src.family())
	}
	// interrupted ends the sweep when ctx is done: whatever failed then
	// (a sample cut short, a namespace removed under it) is the signal's
	// doing, not a measurement's.
	interrupted := func(running *results.StepKey, rep int) (*results.Run, error) {
		prog.note("%s: stopping; the sample in progress is dropped, what completed is written", signalName(ctx))
		run.MarkPartial(signalName(ctx), running, rep)
		if len(run.Steps) == 0 {
			return nil, errNothingCompleted
		}
		return run, run.Validate()
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		// Interleave nothing across steps: each step's samples run back to
		// back so its queue and drop figures belong to one setting.
		for rep := 0; rep < cfg.reps; rep++ {
			key := st.Key()
			if ctx.Err() != nil {
				return interrupted(nil, 0)
			}
			prog.sample(key, rep)
			spec := sampleSpec{
				rate: st.RatePPS, duration: cfg.duration, rcvbuf: st.RcvBuf, delay: st.ConsumerDelay,
				noENOBUFS: cfg.noENOBUFS, latency: true, probe: true,
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
	if cfg.overhead {
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

// writeTrace writes the captured sample's frames into the result
// directory as trace.pcapng.zst.
func writeTrace(cfg *runConfig, capt *capture, k results.StepKey) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	return capt.write(filepath.Join(cfg.out, traceFile), "imp2-bench "+cfg.source+" "+k.String()+" sample 0")
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
func stepsOf(cfg *runConfig) []results.Step {
	var steps []results.Step
	bufs := slices.Clone(cfg.rcvbufs)
	sort.Sort(sort.Reverse(sort.IntSlice(bufs)))
	for _, b := range bufs {
		for _, d := range cfg.delays {
			for _, r := range cfg.rates {
				steps = append(steps, results.Step{RatePPS: r, RcvBuf: b, ConsumerDelay: d})
			}
		}
	}
	return steps
}

func openSource(ctx context.Context, cfg *runConfig, topo *netns.Topology) (source, error) {
	switch cfg.source {
	case results.SourceKmod:
		return newKmodSource(topo)
	case results.SourceNFLOG:
		return newNFLOGSource(ctx, topo, cfg.qthresh)
	default:
		return &emuSource{dst: topo.Dst}, nil
	}
}

func sourceInfo(cfg *runConfig) results.Source {
	switch cfg.source {
	case results.SourceKmod:
		return results.Source{Kind: results.SourceKmod, Detail: "imp2 module, IPv4 PRE_ROUTING hook, netlink unit 31"}
	case results.SourceNFLOG:
		return results.Source{Kind: results.SourceNFLOG, Detail: fmt.Sprintf("nft log group %d at prerouting priority -1, nfnetlink_log qthresh %d", nflogGroup, cfg.qthresh)}
	default:
		return results.Source{Kind: results.SourceEmu, Emulated: true,
			Detail: "user-space emulation over NETLINK_USERSOCK: no kernel overrun, ENOBUFS or socket drops"}
	}
}

// overheadEvents is the burst the overhead figure drains.
const overheadEvents = 20000

// measureOverhead fills a large receive queue with a burst, then drains it
// as fast as the consumer can, five times with and five times without
// latency recording, interleaved, and compares the consumer thread's CPU
// time per event. Draining a full queue leaves out wake-ups and pacing,
// which would hide the recording cost in noise.
func measureOverhead(ctx context.Context, topo *netns.Topology, src source) (*results.Overhead, error) {
	var with, without []float64
	for i := 0; i < 10; i++ {
		latency := i%2 == 1
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
	return &results.Overhead{
		Method: fmt.Sprintf("consumer thread CPU time per event draining a queued burst of %d events, latency recording off vs on, 5 interleaved pairs, medians", overheadEvents),
		With:   median(with), Without: median(without), Unit: "ns/event",
	}, nil
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
	st := newStats(latency)
	cost, _, err := st.consume(ctx, c, sched, sampleSpec{latency: latency}, done)
	if err != nil {
		return 0, err
	}
	if cost.events < overheadEvents/2 {
		return 0, fmt.Errorf("only %d of %d events queued", cost.events, overheadEvents)
	}
	return float64(cost.cpu.Nanoseconds()) / float64(cost.events), nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Files of a result directory.
const (
	resultsFile = "results.json"
	benchFile   = "bench.txt"
	traceFile   = "trace.pcapng.zst"
	plotsDir    = "plots"
)

// writeOutputs writes results.json, the benchstat file and the plots, and
// prints the summary table.
func writeOutputs(cfg *runConfig, run *results.Run, stdout io.Writer) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	if err := results.Write(filepath.Join(cfg.out, resultsFile), run); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(cfg.out, benchFile))
	if err != nil {
		return err
	}
	if err := results.WriteBenchfmt(f, run); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var files []string
	if cfg.plot {
		if files, err = plots.WriteAll(run, filepath.Join(cfg.out, plotsDir)); err != nil {
			return err
		}
	}
	writeSummary(stdout, run)
	fmt.Fprintf(stdout, "\nresults: %s (%s", cfg.out, resultsFile)
	if run.Partial {
		fmt.Fprint(stdout, " marked partial")
	}
	fmt.Fprintf(stdout, ", %s", benchFile)
	if _, err := os.Stat(filepath.Join(cfg.out, traceFile)); err == nil {
		fmt.Fprintf(stdout, ", %s", traceFile)
	}
	fmt.Fprintf(stdout, ", %d plots)\n", len(files))
	return nil
}
