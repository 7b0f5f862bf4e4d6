package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// The commands that give a verdict: compare, ab and gate.

// compareFlags registers the verdict's flags on fs.
func compareFlags(fs *flag.FlagSet) *bench.CompareOptions {
	o := &bench.CompareOptions{}
	fs.Float64Var(&o.Alpha, "alpha", 0, "significance level of the U test (default 0.05, or the -config file's)")
	fs.StringVar(&o.Config, "config", "", "JSON file of thresholds over the defaults, e.g. {\"alpha\":0.01,\"thresholds\":{\"p99-unicast-ns\":{\"rel\":0.4,\"abs\":10000}}}")
	fs.BoolVar(&o.JSON, "json", false, "write the verdict as JSON instead of a table")
	fs.StringVar(&o.PlotDir, "plot", "", "also draw base vs new side by side into this directory (compare.png, compare.svg)")
	return o
}

// newFlags is a flag set whose -h prints the usage text and the flags.
func newFlags(name, text string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, text)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, flags before, between or after the positional
// arguments (`compare BASE NEW -json`, which flag.Parse alone stops at),
// and wants n of those. ok false: exit with code.
func parse(fs *flag.FlagSet, args []string, n int, stderr io.Writer) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false
		} else if err != nil {
			return nil, exitUsage, false
		}
		if args = fs.Args(); len(args) > 0 && args[0] == "--" { // fs.Parse already ate a leading "--"
			pos, args = append(pos, args[1:]...), nil
		}
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != n {
		fmt.Fprintf(stderr, "%s: want %d arguments, got %d\n", fs.Name(), n, len(pos))
		fs.Usage()
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

// verdict writes v and returns its exit status.
func verdict(o *bench.CompareOptions, v *compare.Verdict, base, new *results.Run, stdout, stderr io.Writer) int {
	code, err := o.WriteVerdict(v, base, new, stdout, stderr)
	if err != nil {
		return exitFor(stderr, "imp2-bench:", err)
	}
	return code
}

// compareCmd is `imp2-bench compare BASE NEW`.
func compareCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("imp2-bench compare", `usage: imp2-bench compare [flags] BASE NEW

BASE and NEW are result directories or results.json files. For each metric
and sweep step both have: medians with confidence intervals, a Mann–Whitney
U test, and a regression when the change is significant, beyond the metric's
threshold and the intervals do not overlap. Counts the kernel makes
deterministic (burst-held) are compared exactly.

Exit status: 0 no regression, 1 regression, 2 unusable input (unreadable,
schema mismatch, a partial run, too few samples to decide), each with a
one-line reason.

`, stderr)
	o := compareFlags(fs)
	pos, code, ok := parse(fs, args, 2, stderr)
	if !ok {
		return code
	}
	v, base, new, err := bench.CompareFiles(pos[0], pos[1], *o)
	if err != nil {
		return exitFor(stderr, "imp2-bench compare:", err)
	}
	return verdict(o, v, base, new, stdout, stderr)
}

// abCmd is `imp2-bench ab`: two module builds benchmarked interleaved in
// one VM (bench.AB says why), then compared like compare.
func abCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("imp2-bench ab", `usage: imp2-bench ab [-base REV|FILE.ko] [-new FILE.ko] [flags]

Benchmarks two builds of the module interleaved (A B, B A, A B, …) in one VM
run, then compares them like imp2-bench compare (exit 0 no regression,
1 regression, 2 unusable; 130 interrupted: the samples that completed are
kept in base/ and new/, not compared). The sweep's flags are run's; ab always
runs the module (kmod) in the VM.

`, stderr)
	o := bench.ABOptions{Sweep: bench.Options{Source: results.SourceKmod, Progress: stderr}}
	fs.StringVar(&o.Base, "base", "HEAD", "base build: a git revision (kmod/ at that revision is built in a temporary folder) or a .ko file")
	fs.StringVar(&o.New, "new", "", "new build: a .ko file (default: the working tree's kmod/)")
	fs.StringVar(&o.Sweep.Out, "out", "", "result directory, with base/ and new/ runs (default results/ab-<time>)")
	co, finish := compareFlags(fs), sweepFlags(fs, &o.Sweep)
	if _, code, ok := parse(fs, args, 0, stderr); !ok {
		return code
	} else if err := finish(); err != nil {
		exitFor(stderr, "imp2-bench ab:", err) // names the flag
		return exitUsage
	}
	if o.Sweep.Out == "" {
		o.Sweep.Out = filepath.Join("results", "ab-"+time.Now().UTC().Format("20060102-150405"))
	}
	var err error
	if o.Compare, err = co.Load(); err != nil {
		return exitFor(stderr, "imp2-bench ab:", err)
	}
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Sweep.Hard = hard
	res, err := bench.AB(ctx, o)
	if err != nil {
		return exitFor(stderr, "imp2-bench ab:", err)
	} else if res.Verdict == nil {
		fmt.Fprintln(stderr, "imp2-bench ab: interrupted; the partial runs are not compared")
		return exitInterrupted
	}
	return verdict(co, res.Verdict, res.Runs[0], res.Runs[1], stdout, stderr)
}

// gateCmd is `imp2-bench gate`: the CI gate (bench.GateAB).
func gateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("imp2-bench gate", `usage: imp2-bench gate [flags]

The CI gate: this checkout's module against the base revision's, both
built here and measured interleaved in one VM boot on their cost per
event, then the exact counts (burst-held) against the committed baseline
of the VM's kernel release (a release without an entry gets one: commit
it). Exit 0 pass, 1 regression, 2 unusable, 130 interrupted.

`, stderr)
	o := bench.GateABOptions{Progress: stderr, Rule: bench.DefaultGateRule}
	fs.StringVar(&o.Base, "base", "", "base: a git revision or a .ko file (default: the merge-base of HEAD with main)")
	fs.StringVar(&o.Baseline, "baseline", filepath.Join("results", "ci-baseline"), "directory of the exact-count baseline ("+bench.ExactBaselineFile+")")
	fs.BoolVar(&o.Rebaseline, "rebaseline", false, "write this kernel's exact counts into the baseline instead of comparing them (commit the file)")
	fs.IntVar(&o.Reps, "reps", bench.DefaultGateReps, "samples of each module")
	fs.IntVar(&o.Count, "count", bench.DefaultGateCount, "packets per sample")
	fs.IntVar(&o.CPUs, "cpus", bench.DefaultGateCPUs, "guest vCPUs")
	fs.StringVar(&o.ICount, "icount", bench.DefaultGateICount, "qemu -icount for the boot; none: without")
	delays := fs.String("test-delays", "", "also compare test variants with these per-event delays (ns, comma-separated; tests and calibration)")
	if _, code, ok := parse(fs, args, 0, stderr); !ok {
		return code
	}
	if o.ICount == "none" {
		o.ICount = ""
	}
	o.Candidates = []bench.GateCandidate{{}}
	for _, d := range strings.FieldsFunc(*delays, func(r rune) bool { return r == ',' }) {
		ns, err := strconv.Atoi(strings.TrimSpace(d))
		if err != nil || ns <= 0 {
			fmt.Fprintf(stderr, "imp2-bench gate: -test-delays: %q is not a positive number of nanoseconds\n", d)
			return exitUsage
		}
		o.Candidates = append(o.Candidates, bench.GateCandidate{DelayNS: ns})
	}
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Hard = hard
	res, err := bench.GateAB(ctx, o)
	if errors.Is(err, bench.ErrNothingCompleted) {
		fmt.Fprintln(stderr, "imp2-bench gate: interrupted; no verdict")
		return exitInterrupted
	} else if err != nil {
		return exitFor(stderr, "imp2-bench gate:", err)
	}
	fmt.Fprint(stdout, res.Report())
	fmt.Fprintf(stderr, "gate: %.0f s\n", res.Elapsed.Seconds())
	if res.Failed() {
		return exitFailure
	}
	return exitOK
}
