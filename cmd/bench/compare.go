package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

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
	fs.StringVar(&o.Config, "config", "", "JSON file of thresholds over the defaults, e.g. {\"alpha\":0.01,\"thresholds\":{\"p99-unicast-ns\":{\"rel\":0.4,\"abs\":10000}}}")
	fs.BoolVar(&o.JSON, "json", false, "write the verdict as JSON instead of a table")
	fs.StringVar(&o.PlotDir, "plot", "", "also draw base vs new side by side into this directory (compare.png, compare.svg)")
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
		if werr := o.WriteUnusable(pos[0], pos[1], err, stdout); werr != nil {
			return exitFor(stderr, c.Name+":", werr)
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
	c.Flags.StringVar(&o.Sweep.Out, "out", bench.DefaultOut("ab"), "result directory, with base/ and new/ runs")
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

// gateCmd is `imp2-bench gate`: the CI gate (bench.Gate).
func gateCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench gate", "imp2-bench gate [flags]", `
Run the baseline's sweep again and compare it with the baseline. Exact counts
(burst-held) are compared on the baseline's kernel only. Refresh the baseline on
purpose with `+"`make baseline`"+`.`, exitsVerdict+";\n130 interrupted: no verdict, the partial run is kept and named.")
	o := bench.GateOptions{Progress: stderr, Build: cli.Version()}
	c.Flags.StringVar(&o.Baseline, "baseline", filepath.Join("results", "ci-baseline"), "baseline directory: results.json and, optionally, "+bench.GateConfigFile+" (thresholds)")
	c.Flags.StringVar(&o.Out, "out", "", "keep the new run in this directory (default: a temporary one, removed)")
	co := compareFlags(c.Flags)
	if _, code, ok := c.ParseArgs(args, 0, 0, stdout, stderr); !ok {
		return code
	}
	start := time.Now()
	o.Compare = *co
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Hard = hard
	res, err := bench.Gate(ctx, o)
	if err != nil {
		return exitFor(stderr, c.Name+":", err)
	} else if res.Verdict == nil {
		fmt.Fprintf(stderr, "imp2-bench gate: %s; no verdict. The partial run is in %s\n", res.New.Describe(), res.Dir)
		return exitInterrupted
	}
	code := verdict(co, res.Verdict, results.ValuesOf(res.Base), results.ValuesOf(res.New), stdout, stderr)
	fmt.Fprintf(stderr, "gate: %.0f s\n", time.Since(start).Seconds())
	return code
}
