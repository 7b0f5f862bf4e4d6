package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// Files of a baseline directory besides results.json.
const gateConfigFile = "compare.json"

// gateCmd is `imp2-bench gate`: the CI gate. It repeats the sweep recorded
// in the baseline (same source, steps, duration and repetitions, in the VM
// if the baseline ran there), compares the new run against the baseline
// with the thresholds in the baseline's compare.json, and exits like
// compare. Exact counts (burst-held) are only compared when the kernel
// release matches the baseline's: they are rcvbuf/truesize, and truesize
// is the kernel's; on another kernel they are dropped with a note.
func gateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imp2-bench gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baseline := fs.String("baseline", filepath.Join("results", "ci-baseline"), "baseline directory: results.json and, optionally, compare.json (thresholds)")
	out := fs.String("out", "", "keep the new run in this directory (default: a temporary one, removed)")
	var o compareOpts
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: imp2-bench gate [flags]

Runs the baseline's sweep again and compares it with the baseline (exit 0
no regression, 1 regression, 2 unusable; 130 interrupted: no verdict, the
partial run is kept and named). Refresh the baseline on purpose
with `+"`make baseline`"+`.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imp2-bench gate: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	start := time.Now()
	keep := false // the new run's directory, when it is a temporary one
	if o.config == "" {
		if p := filepath.Join(*baseline, gateConfigFile); fileExists(p) {
			o.config = p
		}
	}
	cfg, err := o.load()
	if err != nil {
		return reportUnusable(stderr, err)
	}
	base, err := results.Read(*baseline)
	if err != nil {
		return reportUnusable(stderr, err)
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "imp2-gate-"); err != nil {
			fmt.Fprintln(stderr, "imp2-bench:", err)
			return exitFailure
		}
		// Kept when interrupted with samples in it: said below.
		defer func() {
			if !keep {
				os.RemoveAll(dir)
			}
		}()
	}
	repeat := append(replayArgs(base), "-out", dir)
	rc, err := parseRun(repeat, stderr)
	if err != nil {
		return reportUnusable(stderr, fmt.Errorf("%w: the baseline's sweep cannot be repeated: %v", compare.ErrUnusable, err))
	}
	fmt.Fprintf(stderr, "gate: imp2-bench run %s\n", strings.Join(repeat, " "))
	ctx, stop := notifyInterrupts(rc)
	defer stop()
	new, v, err := bench.Gate(ctx, bench.GateOptions{Baseline: base, BaselineLabel: *baseline, Sweep: *rc, Compare: cfg})
	if errors.Is(err, compare.ErrUnusable) {
		return reportUnusable(stderr, err)
	}
	if code, failed := failure(stderr, "imp2-bench gate:", err); failed {
		return code
	}
	if v == nil {
		// No verdict on part of a sweep; the samples stay for a look.
		keep = true
		fmt.Fprintf(stderr, "imp2-bench gate: %s; no verdict. The partial run is in %s\n", new.Describe(), dir)
		return exitInterrupted
	}
	code := writeVerdict(v, base, new, &o, stdout, stderr)
	fmt.Fprintf(stderr, "gate: %.0f s\n", time.Since(start).Seconds())
	return code
}

// replayArgs are the `run` flags that repeat base's sweep, without plots,
// trace or the overhead figure (the gate compares none of them).
func replayArgs(base *results.Run) []string {
	p := base.Params
	ints := func(v []int) string {
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, ",")
	}
	delays := make([]string, len(p.ConsumerDelays))
	for i, d := range p.ConsumerDelays {
		delays[i] = results.FormatDelay(d)
	}
	args := []string{"-source", base.Source.Kind, "-rates", ints(p.RatesPPS), "-rcvbufs", ints(p.RcvBufs),
		"-delays", strings.Join(delays, ","), "-duration", p.StepDuration.String(), "-reps", strconv.Itoa(p.Repetitions),
		"-plot=false", "-overhead=false", "-trace-frames", "0"}
	if base.Environment.InVM {
		args = append(args, "-vm")
	}
	if p.NoENOBUFS {
		args = append(args, "-no-enobufs")
	}
	if base.Source.Kind == results.SourceNFLOG {
		args = append(args, "-qthresh", strconv.Itoa(p.NFLOGQThreshold))
	}
	return args
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
