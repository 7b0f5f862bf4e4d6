package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/plots"
	"github.com/imp2/imp2/internal/results"
)

// compareOpts are the flags shared by compare, ab and gate.
type compareOpts struct {
	alpha  float64 // 0: the config's
	config string
	json   bool
	plot   string
}

func (o *compareOpts) register(fs *flag.FlagSet) {
	fs.Float64Var(&o.alpha, "alpha", 0, "significance level of the U test (default 0.05, or the -config file's)")
	fs.StringVar(&o.config, "config", "", "JSON file of thresholds over the defaults, e.g. {\"alpha\":0.01,\"thresholds\":{\"p99-unicast-ns\":{\"rel\":0.4,\"abs\":10000}}}")
	fs.BoolVar(&o.json, "json", false, "write the verdict as JSON instead of a table")
	fs.StringVar(&o.plot, "plot", "", "also draw base vs new side by side into this directory (compare.png, compare.svg)")
}

// load reads the config file (if any) and applies -alpha over it.
func (o *compareOpts) load() (compare.Config, error) {
	cfg := compare.DefaultConfig()
	if o.config != "" {
		f, err := os.Open(o.config)
		if err != nil {
			return cfg, err
		}
		defer f.Close()
		if cfg, err = compare.ReadConfig(f); err != nil {
			return cfg, fmt.Errorf("%s: %w", o.config, err)
		}
	}
	if o.alpha != 0 {
		cfg.Alpha = o.alpha
	}
	return cfg, cfg.Validate()
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments (`compare BASE NEW -json`), which flag.Parse
// alone stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" { // fs.Parse already ate a leading "--"
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// compareCmd is `imp2-bench compare BASE NEW`.
func compareCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imp2-bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: imp2-bench compare [flags] BASE NEW

BASE and NEW are result directories or results.json files. For each metric
and sweep step both have: medians with confidence intervals, a Mann–Whitney
U test, and a regression when the change is significant, beyond the metric's
threshold and the intervals do not overlap. Counts the kernel makes
deterministic (burst-held) are compared exactly.

Exit status: 0 no regression, 1 regression, 2 unusable input (unreadable,
schema mismatch, a partial run, too few samples to decide), each with a
one-line reason.

`)
		fs.PrintDefaults()
	}
	var o compareOpts
	o.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "imp2-bench compare: want BASE and NEW, got %d arguments\n", len(pos))
		fs.Usage()
		return exitUsage
	}
	cfg, err := o.load()
	if err != nil {
		return reportUnusable(stderr, err)
	}
	base, err := results.Read(pos[0])
	if err != nil {
		return reportUnusable(stderr, err)
	}
	new, err := results.Read(pos[1])
	if err != nil {
		return reportUnusable(stderr, err)
	}
	v, err := compare.Compare(base, new, pos[0], pos[1], cfg)
	if err != nil {
		return reportUnusable(stderr, err)
	}
	return writeVerdict(v, base, new, &o, stdout, stderr)
}

// reportUnusable prints the one-line reason for exit 2.
func reportUnusable(stderr io.Writer, err error) int {
	code, reason := compare.ExitStatus(nil, err)
	fmt.Fprintf(stderr, "exit %d: %s\n", code, reason)
	return code
}

// writeVerdict writes the table (or JSON) and the plot, and returns the
// verdict's exit status. With -json the reason also goes to stderr, so a
// CI log shows it while stdout stays one JSON document.
func writeVerdict(v *compare.Verdict, base, new *results.Run, o *compareOpts, stdout, stderr io.Writer) int {
	code, reason := compare.ExitStatus(v, nil)
	var err error
	if o.json {
		err = v.WriteJSON(stdout)
		fmt.Fprintf(stderr, "exit %d: %s\n", code, reason)
	} else {
		err = v.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitFailure
	}
	if o.plot != "" {
		files, err := plots.WriteComparison(base, new, v.Base, v.New, o.plot)
		if err != nil {
			// The verdict stands; a missing figure is worth a line, not a
			// different exit status.
			fmt.Fprintln(stderr, "imp2-bench: no comparison plot:", err)
		} else {
			fmt.Fprintf(stderr, "plots: %s\n", strings.Join(files, ", "))
		}
	}
	return code
}
