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

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// The commands that give a verdict: compare, ab and gate.

// compareFlags registers the verdict's flags on fs.
func compareFlags(fs *flag.FlagSet) *bench.CompareOptions {
	o := &bench.CompareOptions{}
	fs.Float64Var(&o.Alpha, "alpha", 0, "significance level of the U test (default 0.05, or the -config file's)")
	fs.StringVar(&o.Config, "config", "", "JSON `FILE` of thresholds over the defaults, e.g. {\"alpha\":0.01,\"thresholds\":{\"p99-unicast-ns\":{\"rel\":0.4,\"abs\":10000}}}")
	fs.BoolVar(&o.JSON, "json", false, "write the verdict as JSON instead of a table")
	fs.StringVar(&o.PlotDir, "plot", "", "also draw base vs new side by side into `DIR` (compare.png, compare.svg)")
	return o
}

// verdict writes v and returns its exit status.
func verdict(o *bench.CompareOptions, v *compare.Verdict, base, new *results.Values, stdout, stderr io.Writer) int {
	code, err := o.WriteVerdict(v, base, new, stdout, stderr)
	if err != nil {
		return exitFor(stderr, "imp2-bench:", err)
	}
	return code
}

// compareCmd is `imp2-bench compare BASE NEW`.
func compareCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench compare", "imp2-bench compare [flags] BASE NEW", `
BASE and NEW, the two plain arguments, are result directories, results.json or
bench.txt files, in any mix. For each metric and sweep step both have: medians
with confidence intervals, a Mann–Whitney U test, and a regression when the
change is significant, beyond the metric's threshold and the intervals do not
overlap. Counts the kernel makes deterministic (burst-held) are compared
exactly. Runs of two sources (imp2 against NFLOG) only with -cross-source,
labelled as a cross-source comparison: a difference is the paths', and
"regression" reads "worse".`, exitsVerdict+`. With -json, stdout is one JSON object
even for unusable input ("verdict": "unusable" and the "error").`)
	o := compareFlags(c.Flags)
	c.Flags.BoolVar(&o.CrossSource, "cross-source", false, "compare runs of different sources (imp2 against NFLOG), labelled as such; without it they are unusable input")
	pos, code, ok := c.ParseArgs(args, 2, 2, stdout, stderr)
	if !ok {
		return code
	}
	res, err := bench.CompareFiles(pos[0], pos[1], *o)
	if errors.Is(err, compare.ErrOtherSource) {
		err = fmt.Errorf("%w (-cross-source compares them)", err)
	}
	if err != nil {
		var bad *bench.OptionError
		if !errors.As(err, &bad) { // a bad flag is usage, not a verdict
			if werr := o.WriteUnusable(pos[0], pos[1], err, stdout); werr != nil {
				return exitFor(stderr, c.Name+":", werr)
			}
		}
		return exitFor(stderr, c.Name+":", err)
	}
	return verdict(o, res.Verdict, res.Base.Values, res.New.Values, stdout, stderr)
}

// abCmd is `imp2-bench ab`: two module builds benchmarked interleaved in
// one VM (bench.AB says why), then compared like compare.
func abCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench ab", "imp2-bench ab [-base REV|FILE.ko] [-new FILE.ko] [flags]", `
Benchmark two builds of the module interleaved (A B, B A, A B, …) in one VM run,
then compare them like imp2-bench compare. The sweep's flags are run's; ab
always runs the module (kmod) in the VM.`, exitsVerdict+";\n130 interrupted: the samples that completed are kept in base/ and new/, not compared.")
	o := bench.ABOptions{Sweep: bench.Options{Source: results.SourceKmod, Progress: stderr}}
	c.Flags.StringVar(&o.Base, "base", "HEAD", "base build: a git revision (kmod/ at that revision is built in a temporary folder) or a .ko file")
	c.Flags.StringVar(&o.New, "new", "", "new build: a .ko file (default: the working tree's kmod/)")
	c.Flags.StringVar(&o.Sweep.Out, "out", "", "result `DIR`, with base/ and new/ runs (default results/ab-<time>)")
	co := compareFlags(c.Flags)
	sweepFlags(c.Flags, &o.Sweep)
	var err error
	if _, code, ok := c.ParseArgs(args, 0, 0, stdout, stderr); !ok {
		return code
	} else if err = o.Sweep.Validate(); err != nil {
		return exitFor(stderr, c.Name+":", err) // names the flag
	} else if o.Compare, err = co.Load(); err != nil {
		return exitFor(stderr, c.Name+":", err)
	}
	if o.Sweep.Out == "" {
		o.Sweep.Out = bench.DefaultOut("ab")
	}
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Sweep.Hard = hard
	res, err := bench.AB(ctx, o)
	if err != nil {
		return exitFor(stderr, c.Name+":", err)
	} else if res.Verdict == nil {
		fmt.Fprintln(stderr, "imp2-bench ab: interrupted; the partial runs are not compared")
		return exitInterrupted
	}
	return verdict(co, res.Verdict, results.ValuesOf(res.Runs[0]), results.ValuesOf(res.Runs[1]), stdout, stderr)
}

// gateCmd is `imp2-bench gate`: the CI gate (bench.GateAB).
func gateCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench gate", "imp2-bench gate [flags]", `
The CI gate: this checkout's module and consumer against the base revision's,
both built here and measured interleaved in one VM boot on their CPU cost per
event (each side's floods drained by its own revision's consumer), then
the exact counts (burst-held) against the committed baseline of the VM's kernel
release (a release without an entry gets one written: commit it).`,
		"0 pass; 1 regression (or a metric that could not be decided); 2 unusable input\nor bad usage; 130 interrupted: no verdict.")
	o := bench.GateABOptions{Progress: stderr, Rule: bench.DefaultGateRule}
	f := c.Flags
	f.StringVar(&o.Base, "base", "", "base: a git revision or a .ko file (default: the merge-base of HEAD with main)")
	f.StringVar(&o.Baseline, "baseline", filepath.Join("results", "ci-baseline"), "directory of the exact-count baseline ("+bench.ExactBaselineFile+")")
	f.BoolVar(&o.Rebaseline, "rebaseline", false, "write this kernel's exact counts into the baseline instead of comparing them (commit the file)")
	f.IntVar(&o.Reps, "reps", bench.DefaultGateReps, "samples of each module")
	f.IntVar(&o.Count, "count", bench.DefaultGateCount, "packets per sample")
	f.IntVar(&o.CPUs, "cpus", bench.DefaultGateCPUs, "guest vCPUs")
	f.StringVar(&o.ICount, "icount", bench.DefaultGateICount, "qemu -icount for the boot; none: without")
	f.BoolVar(&o.ModuleOnly, "module-only", false, "compare the modules only: this checkout's consumer drains the base's floods too (a base that predates the gate's consumer)")
	delays := f.String("test-delays", "", "also compare test variants with these per-event delays in the module (ns, comma-separated; tests and calibration)")
	consumerDelays := f.String("test-consumer-delays", "", "also compare test variants with these per-event delays in the consumer (ns, comma-separated; tests)")
	if _, code, ok := c.ParseArgs(args, 0, 0, stdout, stderr); !ok {
		return code
	}
	if o.ICount == "none" {
		o.ICount = ""
	}
	o.Candidates = []bench.GateCandidate{{}}
	for _, flag := range []struct {
		name, list string
		variant    func(ns int) bench.GateCandidate
	}{
		{"-test-delays", *delays, func(ns int) bench.GateCandidate { return bench.GateCandidate{DelayNS: ns} }},
		{"-test-consumer-delays", *consumerDelays, func(ns int) bench.GateCandidate { return bench.GateCandidate{ConsumerDelayNS: ns} }},
	} {
		for _, d := range strings.FieldsFunc(flag.list, func(r rune) bool { return r == ',' }) {
			ns, err := strconv.Atoi(strings.TrimSpace(d))
			if err != nil || ns <= 0 {
				fmt.Fprintf(stderr, "%s: %s: %q is not a positive number of nanoseconds\n", c.Name, flag.name, d)
				return exitUsage
			}
			o.Candidates = append(o.Candidates, flag.variant(ns))
		}
	}
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Hard = hard
	res, err := bench.GateAB(ctx, o)
	if errors.Is(err, bench.ErrNothingCompleted) {
		fmt.Fprintf(stderr, "%s: interrupted; no verdict\n", c.Name)
		return exitInterrupted
	} else if err != nil {
		return exitFor(stderr, c.Name+":", err)
	}
	fmt.Fprint(stdout, res.Report())
	fmt.Fprintf(stderr, "gate: %.0f s\n", res.Elapsed.Seconds())
	if res.Failed() {
		return exitFailure
	}
	return exitOK
}

// gateConsumerCmd is `imp2-bench gate-consumer NETNS` (inside the VM only):
// the gate's draining consumer of one side (bench.GateConsumer);
// -protocol prints what it speaks, for the host's check of a base binary.
func gateConsumerCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench "+bench.GateConsumerCommand, "imp2-bench "+bench.GateConsumerCommand+" NETNS | -protocol", `
Inside the VM only: the gate's consumer in network namespace NETNS, run by the
gate's harness, which talks to it over stdin and stdout.`, "0 done; 1 failed; 2 bad usage.")
	protocol := c.Flags.Bool("protocol", false, "print the protocol this consumer speaks and exit")
	pos, code, ok := c.ParseArgs(args, 0, 1, stdout, stderr)
	switch {
	case !ok:
		return code
	case *protocol:
		fmt.Fprintln(stdout, bench.GateConsumerProtocol)
		return exitOK
	case len(pos) != 1:
		fmt.Fprintf(stderr, "%s: want the network namespace's name\n", c.Name)
		return exitUsage
	}
	ctx, _, stop := bench.NotifyInterrupts()
	defer stop()
	if err := bench.GateConsumer(ctx, pos[0], os.Stdin, stdout); err != nil {
		return exitFor(stderr, c.Name+":", err)
	}
	return exitOK
}
