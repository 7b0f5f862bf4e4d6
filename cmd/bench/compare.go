package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// The commands that give a verdict: compare, ab and gate.

// compareFlags registers the verdict's flags on fs.
func compareFlags(fs *flag.FlagSet) *bench.CompareOptions {
	o := &bench.CompareOptions{}
	alphaFlag(fs, &o.Alpha)
	fs.StringVar(&o.Config, "config", "", "JSON `FILE` of thresholds over the defaults, e.g. {\"alpha\":0.01,\"thresholds\":{\"p99-unicast-ns\":{\"rel\":0.4,\"abs\":10000}}}")
	fs.BoolVar(&o.JSON, "json", false, "write the verdict as JSON instead of a table")
	fs.StringVar(&o.PlotDir, "plot", "", "also draw base vs new side by side into `DIR` (compare.png, compare.svg)")
	return o
}

// alphaFlag registers -alpha on fs. Its value is refused as it is parsed
// unless 0 < alpha < 0.5: CompareOptions.Alpha 0 is the Go API's "the
// config's", which a command line that says 0 does not mean.
func alphaFlag(fs *flag.FlagSet, p *float64) {
	fs.Func("alpha", "significance level of the U test, 0 < `alpha` < 0.5 (default 0.05, or the -config file's)", func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("want a number, 0 < alpha < 0.5")
		}
		if !(v > 0 && v < 0.5) {
			return errors.New("want 0 < alpha < 0.5")
		}
		*p = v
		return nil
	})
}

// verdict writes v; a regression (or a figure not drawn) is its exit status.
func verdict(c *cli.Command, o *bench.CompareOptions, v *compare.Verdict, base, new *results.Values) error {
	code, err := o.WriteVerdict(v, base, new, c.Stdout, c.Stderr)
	if err == nil && code != exitOK {
		return &cli.Exit{Code: code}
	}
	return err
}

var compareSub = cli.Sub{Name: "compare", Summary: "regression verdict between two runs",
	Usage: "imp2-bench compare [flags] BASE NEW", MinArgs: 2, MaxArgs: 2, Description: `
BASE and NEW, the two plain arguments, are result directories, results.json or
bench.txt files, in any mix. For each metric and sweep step both have: medians
with confidence intervals, a Mann–Whitney U test, and a regression when the
change is significant, beyond the metric's threshold and the intervals do not
overlap. Counts the kernel makes deterministic (burst-held) are compared
exactly. Runs of two sources (imp2 against NFLOG) only with -cross-source,
labelled as a cross-source comparison: a difference is the paths', and
"regression" reads "worse".`, Exits: exitsVerdict + `. With -json, stdout is one JSON object
even for unusable input ("verdict": "unusable" and the "error").`,
	Setup: func(c *cli.Command) func([]string) error {
		o := compareFlags(c.Flags)
		c.Flags.BoolVar(&o.CrossSource, "cross-source", false, "compare runs of different sources (imp2 against NFLOG), labelled as such; without it they are unusable input")
		return func(args []string) error {
			res, err := bench.CompareFiles(args[0], args[1], *o)
			if errors.Is(err, compare.ErrOtherSource) {
				err = fmt.Errorf("%w (-cross-source compares them)", err)
			}
			if err != nil {
				return errors.Join(err, o.WriteUnusable(args[0], args[1], err, c.Stdout))
			}
			return verdict(c, o, res.Verdict, res.Base.Values, res.New.Values)
		}
	}}

var abSub = cli.Sub{Name: "ab", Summary: "two module builds benchmarked interleaved in one VM, then compared",
	Usage: "imp2-bench ab [-base REV|FILE.ko] [-new FILE.ko] [flags]", Description: `
Benchmark two builds of the module interleaved (A B, B A, A B, …) in one VM run,
then compare them like imp2-bench compare. The sweep's flags are run's; ab
always runs the module (kmod) in the VM.`, Exits: exitsVerdict + ";\n130 interrupted: the samples that completed are kept in base/ and new/, not compared.",
	Setup: func(c *cli.Command) func([]string) error {
		o := bench.ABOptions{Sweep: bench.Options{Source: results.SourceKmod, Progress: c.Stderr}}
		c.Habits = map[string]string{"source": "ab always runs the module (kmod) in the VM", "qthresh": "ab always runs the module (kmod); -qthresh is nflog's (imp2-bench run -source nflog)"}
		c.Flags.StringVar(&o.Base, "base", "HEAD", "base build: a git revision (kmod/ at that revision is built in a temporary folder) or a .ko file")
		c.Flags.StringVar(&o.New, "new", "", "new build: a .ko file (default: the working tree's kmod/)")
		c.Flags.StringVar(&o.Sweep.Out, "out", "", "result `DIR`, with base/ and new/ runs (default results/ab-<time>)")
		co := compareFlags(c.Flags)
		sweepFlags(c.Flags, &o.Sweep)
		return func([]string) (err error) {
			if o.Compare, err = co.Load(); err != nil {
				return err
			}
			ctx, stop := startSweep(c, &o.Sweep)
			defer stop()
			res, err := bench.AB(ctx, o)
			if err == nil && res.Verdict == nil {
				return interrupted("interrupted; the partial runs are not compared")
			} else if err != nil {
				return err
			}
			return verdict(c, co, res.Verdict, results.ValuesOf(res.Runs[0]), results.ValuesOf(res.Runs[1]))
		}
	}}

var gateSub = cli.Sub{Name: "gate", Summary: "CI gate: base's module and consumer against this one's, in the VM",
	Usage: "imp2-bench gate [flags]", Description: `
The CI gate: this checkout's module and consumer against the base revision's,
both built here and measured interleaved in one VM boot on their CPU cost per
event (each side's floods drained by its own revision's consumer), then
the exact counts (burst-held) against the committed baseline of the VM's kernel
release (a release without an entry gets one written: commit it).`,
	Exits: "0 pass; 1 regression (or a metric that could not be decided); 2 unusable input\nor bad usage; 130 interrupted: no verdict.",
	Setup: func(c *cli.Command) func([]string) error {
		o := bench.GateABOptions{Progress: c.Stderr, Rule: bench.DefaultGateRule}
		f := c.Flags
		f.StringVar(&o.Base, "base", "", "base: a git revision or a .ko file (default: the merge-base of HEAD with main)")
		f.StringVar(&o.Baseline, "baseline", filepath.Join("results", "ci-baseline"), "directory of the exact-count baseline ("+bench.ExactBaselineFile+")")
		f.BoolVar(&o.Rebaseline, "rebaseline", false, "write this kernel's exact counts into the baseline instead of comparing them (commit the file)")
		f.IntVar(&o.Reps, "reps", bench.DefaultGateReps, "samples of each module")
		f.IntVar(&o.Count, "count", bench.DefaultGateCount, "packets per sample")
		f.IntVar(&o.CPUs, "cpus", bench.DefaultGateCPUs, "guest vCPUs")
		f.StringVar(&o.ICount, "icount", bench.DefaultGateICount, "qemu -icount for the boot; none: without")
		f.BoolVar(&o.ModuleOnly, "module-only", false, "compare the modules only: this checkout's consumer drains the base's floods too (a base that predates the gate's consumer)")
		var delays, consumerDelays []int
		cli.ListVar(f, &delays, "test-delays", "", bench.ParseInts, "also compare test variants with these per-event delays in the module (ns, comma-separated; tests and calibration)")
		cli.ListVar(f, &consumerDelays, "test-consumer-delays", "", bench.ParseInts, "also compare test variants with these per-event delays in the consumer (ns, comma-separated; tests)")
		return func([]string) error {
			o.Candidates = bench.GateCandidates(delays, consumerDelays)
			ctx, hard, stop := bench.NotifyInterrupts()
			defer stop()
			o.Hard = hard
			res, err := bench.GateAB(ctx, o)
			if errors.Is(err, bench.ErrNothingCompleted) {
				return interrupted("interrupted; no verdict")
			} else if err != nil {
				return err
			}
			fmt.Fprint(c.Stdout, res.Report())
			fmt.Fprintf(c.Stderr, "gate: %.0f s\n", res.Elapsed.Seconds())
			if res.Failed() {
				return &cli.Exit{Code: exitFailure}
			}
			return nil
		}
	}}
