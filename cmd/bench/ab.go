package main

// imp2-bench ab: two builds of the module benchmarked interleaved in one VM.
//
// Why interleaved: on a shared machine, and more so under qemu's software
// emulation, the speed of "the machine" drifts by tens of percent over
// minutes (other tenants, qemu's translation cache, host frequency). Two
// runs made one after the other measure two different machines, and a U
// test on them detects the drift as readily as the module. Here both
// builds run in the same VM, repetition by repetition (A B, B A, A B, …):
// each drift hits both samples alike, so what differs between the two
// sides is the module. The order flips every repetition so that neither
// build always runs first after a swap.
//
// The host builds both modules and the bench binary, boots the VM once,
// and runs `imp2-bench ab-guest` inside it, which rmmods/insmods the
// builds in turn and measures one sample of every step per load. The
// guest writes base/ and new/ results; the host compares them like
// `imp2-bench compare`.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// splitFlags takes the flags named in own (-name V, -name=V, or a bare
// boolean listed in bools) out of args and returns them apart from the
// rest, in order, so that a command can take its own flags and pass
// `run`'s to parseRun.
func splitFlags(args []string, own map[string]bool) (mine, rest []string) {
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		isBool, ok := own[name]
		if !ok || !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		mine = append(mine, args[i])
		if !hasValue && !isBool && i+1 < len(args) {
			i++
			mine = append(mine, args[i])
		}
	}
	return mine, rest
}

// abFlags are ab's own flags (true: boolean); the others are run's.
var abFlags = map[string]bool{"base": false, "new": false, "out": false, "alpha": false, "config": false, "json": true, "plot": false}

// abCmd is `imp2-bench ab`.
func abCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imp2-bench ab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baseRef := fs.String("base", "HEAD", "base build: a git revision (kmod/ at that revision is built in a temporary folder) or a .ko file")
	newKo := fs.String("new", "", "new build: a .ko file (default: the working tree's kmod/)")
	out := fs.String("out", "", "result directory, with base/ and new/ runs (default results/ab-<time>)")
	var o compareOpts
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: imp2-bench ab [-base REV|FILE.ko] [-new FILE.ko] [compare flags] [run flags]

Benchmarks two builds of the module interleaved (A B, B A, A B, …) in one VM
run, then compares them like imp2-bench compare (exit 0 no regression,
1 regression, 2 unusable; 130 interrupted: the samples that completed are
kept in base/ and new/, not compared). The run flags (-rates, -rcvbufs, -delays,
-duration, -reps, -no-enobufs) set the sweep; see imp2-bench run -h.

`)
		fs.PrintDefaults()
	}
	mine, runArgs := splitFlags(args, abFlags)
	if err := fs.Parse(mine); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	for _, a := range runArgs {
		if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); a != "" && a[0] == '-' && (n == "source" || n == "vm") {
			fmt.Fprintf(stderr, "imp2-bench ab: %s: ab always runs the module (kmod) in the VM\n", a)
			return exitUsage
		}
	}
	if *out == "" {
		*out = filepath.Join("results", "ab-"+time.Now().UTC().Format("20060102-150405"))
	}
	rc, err := parseRun(append(runArgs, "-source", "kmod", "-out", *out), stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "imp2-bench ab:", err)
		}
		return exitUsage
	}
	cfg, err := o.load()
	if err != nil {
		return reportUnusable(stderr, err)
	}
	ctx, stop := notifyInterrupts(rc)
	defer stop()
	runs, labels, err := bench.AB(ctx, bench.ABOptions{Sweep: *rc, Base: *baseRef, New: *newKo,
		GuestArgs: func(kos, labels [2]string) []string {
			return append([]string{"ab-guest", "-base-ko", kos[0], "-new-ko", kos[1], "-base-label", labels[0], "-new-label", labels[1]},
				rc.GuestArgs[1:]...) // run's flags, without "run"
		}})
	if code, failed := failure(stderr, "imp2-bench ab:", err); failed {
		return code
	}
	if runs[0] == nil || runs[1] == nil || runs[0].Partial || runs[1].Partial {
		// No verdict on part of a sweep: say what was kept instead.
		for i, sub := range []string{bench.ABBaseDir, bench.ABNewDir} {
			if runs[i] == nil {
				fmt.Fprintf(stderr, "imp2-bench ab: %s (%s): interrupted before its first sample, nothing written\n", sub, labels[i])
			} else {
				fmt.Fprintf(stderr, "imp2-bench ab: %s (%s): %s\n", filepath.Join(*out, sub, bench.ResultsFile), labels[i], runs[i].Describe())
			}
		}
		fmt.Fprintln(stderr, "imp2-bench ab: interrupted; the partial runs are not compared")
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "results: %s/{%s,%s}/%s\n", *out, bench.ABBaseDir, bench.ABNewDir, bench.ResultsFile)
	v, err := compare.Compare(runs[0], runs[1], labels[0], labels[1], cfg)
	if err != nil {
		return reportUnusable(stderr, err)
	}
	return writeVerdict(v, runs[0], runs[1], &o, stdout, stderr)
}

// abGuestCmd is `imp2-bench ab-guest` (inside the VM only): the sweep of
// run's flags, with the two modules loaded in turn.
func abGuestCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imp2-bench ab-guest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kos, labels [2]string
	fs.StringVar(&kos[0], "base-ko", "", "base module file")
	fs.StringVar(&kos[1], "new-ko", "", "new module file")
	fs.StringVar(&labels[0], "base-label", "base", "base build, as results say")
	fs.StringVar(&labels[1], "new-label", "new", "new build, as results say")
	mine, runArgs := splitFlags(args, map[string]bool{"base-ko": false, "new-ko": false, "base-label": false, "new-label": false})
	if err := fs.Parse(mine); err != nil {
		return exitUsage
	}
	rc, err := parseRun(runArgs, stderr)
	if err != nil || kos[0] == "" || kos[1] == "" || rc.Source != results.SourceKmod {
		fmt.Fprintln(stderr, "imp2-bench ab-guest: want -base-ko, -new-ko and a kmod sweep;", err)
		return exitUsage
	}
	ctx, stop := notifyInterrupts(rc)
	defer stop()
	runs, err := bench.ABGuest(ctx, *rc, kos, labels)
	if code, failed := failure(stderr, "imp2-bench ab-guest:", err); failed {
		return code
	}
	for _, r := range runs {
		if r == nil || r.Partial {
			return exitInterrupted
		}
	}
	return exitOK
}
