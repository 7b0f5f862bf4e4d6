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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/vm"
)

const (
	abBaseDir  = "base"
	abNewDir   = "new"
	moduleName = "imp2"
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
	it := notifyInterrupts()
	defer it.stop()
	runs, labels, err := abInVM(it, rc, *baseRef, *newKo, stderr)
	if errors.Is(err, errNothingCompleted) {
		fmt.Fprintln(stderr, "imp2-bench ab:", err)
		return exitInterrupted
	}
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench ab:", err)
		return exitFailure
	}
	for i, sub := range []string{abBaseDir, abNewDir} {
		if runs[i] == nil {
			continue // interrupted before this side's first sample
		}
		d := filepath.Join(*out, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			fmt.Fprintln(stderr, "imp2-bench ab:", err)
			return exitFailure
		}
		if err := results.Write(filepath.Join(d, resultsFile), runs[i]); err != nil {
			fmt.Fprintln(stderr, "imp2-bench ab:", err)
			return exitFailure
		}
	}
	if runs[0] == nil || runs[1] == nil || runs[0].Partial || runs[1].Partial {
		// No verdict on part of a sweep: say what was kept instead.
		for i, sub := range []string{abBaseDir, abNewDir} {
			if runs[i] == nil {
				fmt.Fprintf(stderr, "imp2-bench ab: %s (%s): interrupted before its first sample, nothing written\n", sub, labels[i])
			} else {
				fmt.Fprintf(stderr, "imp2-bench ab: %s (%s): %s\n", filepath.Join(*out, sub, resultsFile), labels[i], runs[i].Describe())
			}
		}
		fmt.Fprintln(stderr, "imp2-bench ab: interrupted; the partial runs are not compared")
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "results: %s/{%s,%s}/%s\n", *out, abBaseDir, abNewDir, resultsFile)
	v, err := compare.Compare(runs[0], runs[1], labels[0], labels[1], cfg)
	if err != nil {
		return reportUnusable(stderr, err)
	}
	return writeVerdict(v, runs[0], runs[1], &o, stdout, stderr)
}

// abInVM builds both modules, runs the interleaved sweep in one VM and
// returns the base and new runs with a label for each build. Interrupted,
// the runs are partial, and nil for a side that has no sample.
func abInVM(it *interrupts, rc *runConfig, baseRef, newKo string, stderr io.Writer) ([2]*results.Run, [2]string, error) {
	var runs [2]*results.Run
	var labels [2]string
	root, err := vm.RepoRoot()
	if err != nil {
		return runs, labels, fmt.Errorf("ab builds the module and the guest binary from the checkout: %w", err)
	}
	k, err := vm.FindKernel()
	if err != nil {
		return runs, labels, err
	}
	tmp, err := os.MkdirTemp("", "imp2-bench-ab-")
	if err != nil {
		return runs, labels, err
	}
	defer os.RemoveAll(tmp)
	kos := [2]string{filepath.Join(tmp, "base.ko"), filepath.Join(tmp, "new.ko")}
	if labels[0], err = buildBase(root, k, baseRef, tmp, kos[0]); err != nil {
		return runs, labels, err
	}
	if newKo != "" {
		labels[1] = newKo
		err = copyFile(newKo, kos[1])
	} else {
		labels[1] = "working tree"
		var ko string
		if ko, err = vm.BuildModule(root, k); err == nil {
			err = copyFile(ko, kos[1]) // a snapshot: others may rebuild kmod/ meanwhile
		}
	}
	if err != nil {
		return runs, labels, err
	}
	bin := filepath.Join(tmp, "imp2-bench")
	if err := vm.BuildGo(root, "./cmd/bench", bin, false); err != nil {
		return runs, labels, err
	}
	share := filepath.Join(tmp, "share")
	if err := os.Mkdir(share, 0o777); err != nil {
		return runs, labels, err
	}
	if it.ctx.Err() != nil { // while building: nothing ran
		return runs, labels, errNothingCompleted
	}
	args := append(guestArgs(rc.args), "-out", "/share/out", "-plot=false")
	script := guestScript(fmt.Sprintf("%s=1 /imp2-bench ab-guest -base-ko /base.ko -new-ko /new.ko -base-label %s -new-label %s %s >/dev/null",
		guestEnv, vm.ShellQuote([]string{labels[0]}), vm.ShellQuote([]string{labels[1]}), vm.ShellQuote(args)))
	fmt.Fprintf(stderr, "booting %s under qemu (software emulation): base %s and new %s, interleaved\n", k.Version, labels[0], labels[1])
	res, err := bootGuest(it, vm.Config{
		Kernel:        k,
		KernelModules: []string{"veth"},
		HostBinaries:  []string{"ip"},
		Files: []vm.File{
			{Guest: "/imp2-bench", Host: bin},
			{Guest: "/base.ko", Host: kos[0], Mode: 0o644},
			{Guest: "/new.ko", Host: kos[1], Mode: 0o644},
		},
		ShareDir: share,
		Script:   script,
		Memory:   "2G",
		Timeout:  2 * vmTimeout(rc),
		Console:  stderr,
	}, stderr)
	interrupted := errors.Is(err, errNothingCompleted)
	switch {
	case interrupted:
		// Stopped by a second interrupt: keep what the guest wrote.
	case err != nil:
		return runs, labels, err
	case len(res.Dmesg) > 0:
		return runs, labels, fmt.Errorf("the guest kernel logged problems during the sweep:\n  %s", strings.Join(res.Dmesg, "\n  "))
	case res.ExitCode == exitInterrupted:
		interrupted = true
	case res.ExitCode != 0:
		return runs, labels, fmt.Errorf("the interleaved sweep inside the VM failed (status %d)", res.ExitCode)
	default:
		fmt.Fprintf(stderr, "VM boot to result: %.1f s\n", res.Elapsed.Seconds())
	}
	for i, sub := range []string{abBaseDir, abNewDir} {
		p := filepath.Join(share, "out", sub, resultsFile)
		if interrupted && !fileExists(p) {
			continue // this side had no sample
		}
		if runs[i], err = results.Read(p); err != nil {
			return runs, labels, err
		}
	}
	if interrupted && runs[0] == nil && runs[1] == nil {
		return runs, labels, errNothingCompleted
	}
	return runs, labels, nil
}

// buildBase makes the base module: ref is a .ko file, or a git revision
// whose kmod/ is exported (git archive) into tmp and built there.
func buildBase(root string, k vm.Kernel, ref, tmp, dst string) (string, error) {
	if strings.HasSuffix(ref, ".ko") {
		if _, err := os.Stat(ref); err != nil {
			return "", err
		}
		return ref, copyFile(ref, dst)
	}
	rev, err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--short", ref+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("-base %q: neither a .ko file nor a git revision of %s", ref, root)
	}
	label := ref + " (" + strings.TrimSpace(string(rev)) + ")"
	src := filepath.Join(tmp, "base-src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", strings.TrimSpace(string(rev)), "kmod")
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var aerr strings.Builder
	archive.Stderr = &aerr
	if err := archive.Start(); err != nil {
		return "", err
	}
	tarOut, tarErr := untar.CombinedOutput()
	if err := archive.Wait(); err != nil {
		return "", fmt.Errorf("git archive %s kmod: %v: %s", ref, err, aerr.String())
	}
	if tarErr != nil {
		return "", fmt.Errorf("unpacking kmod/ of %s: %v: %s", ref, tarErr, tarOut)
	}
	ko, err := vm.BuildModule(src, k)
	if err != nil {
		return "", err
	}
	return label, copyFile(ko, dst)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
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
	if err != nil || kos[0] == "" || kos[1] == "" || rc.source != results.SourceKmod {
		fmt.Fprintln(stderr, "imp2-bench ab-guest: want -base-ko, -new-ko and a kmod sweep;", err)
		return exitUsage
	}
	it := notifyInterrupts()
	defer it.stop()
	runs, err := abSweep(it.ctx, rc, kos, labels, newProgress(stderr))
	if errors.Is(err, errNothingCompleted) {
		fmt.Fprintln(stderr, "imp2-bench ab-guest:", err)
		return exitInterrupted
	}
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench ab-guest:", err)
		return exitFailure
	}
	code := exitOK
	for i, sub := range []string{abBaseDir, abNewDir} {
		if runs[i] == nil {
			code = exitInterrupted
			continue
		}
		if runs[i].Partial {
			code = exitInterrupted
		}
		d := filepath.Join(rc.out, sub)
		if err := os.MkdirAll(d, 0o755); err == nil {
			err = results.Write(filepath.Join(d, resultsFile), runs[i])
		}
		if err != nil {
			fmt.Fprintln(stderr, "imp2-bench ab-guest:", err)
			return exitFailure
		}
	}
	return code
}

// abSweep runs cfg's sweep cfg.reps times for each module, alternating
// A B, B A, …: each load measures one sample of every step in a fresh
// topology, so each step's samples of the two builds interleave in time.
// Cancelling ctx stops it at a sample boundary: both runs are marked
// partial, and a side without a sample is nil.
func abSweep(ctx context.Context, cfg *runConfig, kos, labels [2]string, prog *progress) ([2]*results.Run, error) {
	var runs [2]*results.Run
	for i := range runs {
		src := sourceInfo(cfg)
		src.Detail += "; ab " + []string{"base", "new"}[i] + ": " + labels[i]
		runs[i] = &results.Run{
			SchemaVersion: results.SchemaVersion,
			ToolVersion:   toolVersion,
			Started:       time.Now().UTC(),
			Environment:   results.HostEnvironment(os.Getenv(guestEnv) != ""),
			Source:        src,
			Params: results.Params{
				RatesPPS: cfg.rates, RcvBufs: cfg.rcvbufs, ConsumerDelays: cfg.delays,
				StepDuration: cfg.duration, Repetitions: cfg.reps, NoENOBUFS: cfg.noENOBUFS,
			},
			Steps: stepsOf(cfg),
		}
	}
	if err := removeLeftovers(prog); err != nil {
		return runs, err
	}
	interrupted := func(side int, running *results.StepKey, rep int) ([2]*results.Run, error) {
		prog.note("%s: stopping; the sample in progress is dropped, what completed is written", signalName(ctx))
		for i, r := range runs {
			if i == side {
				r.MarkPartial(signalName(ctx), running, rep)
			} else {
				r.MarkPartial(signalName(ctx), nil, 0)
			}
			if len(r.Steps) == 0 {
				runs[i] = nil
			} else if err := r.Validate(); err != nil {
				return runs, err
			}
		}
		if runs[0] == nil && runs[1] == nil {
			return runs, errNothingCompleted
		}
		return runs, nil
	}
	prog.begin(2 * len(runs[0].Steps) * cfg.reps)
	for rep := 0; rep < cfg.reps; rep++ {
		order := []int{0, 1}
		if rep%2 == 1 {
			order = []int{1, 0}
		}
		for _, side := range order {
			if ctx.Err() != nil {
				return interrupted(side, nil, 0)
			}
			if err := loadModule(ctx, kos[side]); err != nil {
				if ctx.Err() != nil {
					return interrupted(side, nil, 0)
				}
				return runs, fmt.Errorf("repetition %d, %s: %w", rep, labels[side], err)
			}
			prog.note("rep %d: %s loaded", rep+1, labels[side])
			if running, err := abOnce(ctx, cfg, runs[side], rep, prog); ctx.Err() != nil {
				return interrupted(side, running, rep)
			} else if err != nil {
				return runs, fmt.Errorf("repetition %d, %s: %w", rep, labels[side], err)
			}
		}
	}
	for _, r := range runs {
		if err := r.Validate(); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// abOnce measures one sample of every step of run with the module loaded.
// On error it also returns the step whose sample failed (nil when none
// had started).
func abOnce(ctx context.Context, cfg *runConfig, run *results.Run, rep int, prog *progress) (*results.StepKey, error) {
	topo, err := benchTopology(ctx)
	if err != nil {
		return nil, err
	}
	defer topo.Close()
	src, err := newKmodSource(topo)
	if err != nil {
		return nil, err
	}
	defer src.close()
	for i := range run.Steps {
		st := &run.Steps[i]
		key := st.Key()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		prog.sample(key, rep)
		s, _, err := measure(ctx, topo, src, sampleSpec{
			rate: st.RatePPS, duration: cfg.duration, rcvbuf: st.RcvBuf, delay: st.ConsumerDelay,
			noENOBUFS: cfg.noENOBUFS, latency: true, probe: true,
		})
		if err != nil {
			return &key, fmt.Errorf("step %s: %w", key, err)
		}
		s.Rep = rep
		st.Samples = append(st.Samples, s)
		prog.done(&s)
	}
	return nil, nil
}

// loadModule replaces the loaded imp2 module (if any) with the one in
// file. The consumers of the previous load are closed by then; the kernel
// may take a moment to release their sockets, so a busy module is retried
// (until ctx is done).
func loadModule(ctx context.Context, file string) error {
	for i := 0; ; i++ {
		err := unix.DeleteModule(moduleName, unix.O_NONBLOCK)
		if err == nil || errors.Is(err, unix.ENOENT) {
			break
		}
		if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN) || i == 50 {
			return fmt.Errorf("rmmod %s: %w", moduleName, err)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil {
		return fmt.Errorf("insmod %s: %w", file, err)
	}
	return nil
}
