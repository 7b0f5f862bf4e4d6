package bench

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
// and runs `imp2-bench guest` on the job it wrote (guestJob) inside it:
// ABGuest rmmods/insmods the builds in turn and measures one sample of
// every step per load. The guest writes base/ and new/ results; the host
// compares them like `imp2-bench compare`.

import (
	"cmp"
	"context"
	"errors"
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

// moduleName is the module that ab loads and unloads.
const moduleName = "imp2"

// AB builds both modules, runs the interleaved sweep in one VM, writes
// the base and new runs into o.Sweep.Out (ABBaseDir, ABNewDir) and
// compares them; base/ or new/ holding an earlier run's results is
// refused first, unless o.Sweep.Force. Interrupted, the runs are partial (nil for a side that
// has no sample), Progress says what was kept, and there is no verdict.
// Errors wrapping compare.ErrUnusable are the comparison's.
func AB(ctx context.Context, o ABOptions) (*ABResult, error) {
	if o.Sweep.Source != results.SourceKmod {
		return nil, optErr("Source", " %q: ab runs the module (kmod)", o.Sweep.Source)
	}
	if err := o.Sweep.Validate(); err != nil {
		return nil, err
	}
	if o.Sweep.Out == "" {
		o.Sweep.Out = DefaultOut("ab")
	}
	if err := refuseOverwrite(o.Sweep.Force, filepath.Join(o.Sweep.Out, ABBaseDir), filepath.Join(o.Sweep.Out, ABNewDir)); err != nil {
		return nil, err
	}
	if o.Sweep.Progress == nil {
		o.Sweep.Progress = io.Discard
	}
	stderr := o.Sweep.Progress
	var res ABResult
	var err error
	if res.Runs, res.Labels, err = abRun(ctx, o); err != nil {
		return &res, err
	}
	if res.Runs[0] == nil || res.Runs[1] == nil || res.Runs[0].Partial || res.Runs[1].Partial {
		for i, sub := range []string{ABBaseDir, ABNewDir} {
			if res.Runs[i] == nil {
				fmt.Fprintf(stderr, "ab: %s (%s): interrupted before its first sample, nothing written\n", sub, res.Labels[i])
			} else {
				fmt.Fprintf(stderr, "ab: %s (%s): %s\n", filepath.Join(o.Sweep.Out, sub, ResultsFile), res.Labels[i], res.Runs[i].Describe())
			}
		}
		return &res, nil
	}
	fmt.Fprintf(stderr, "results: %s/{%s,%s}/%s\n", o.Sweep.Out, ABBaseDir, ABNewDir, ResultsFile)
	res.Verdict, err = compare.Compare(res.Runs[0], res.Runs[1], res.Labels[0], res.Labels[1], o.Compare)
	if err != nil && !errors.Is(err, compare.ErrUnusable) {
		err = fmt.Errorf("%w: %v", compare.ErrUnusable, err)
	}
	return &res, err
}

// abRun is AB up to the verdict: the builds, the VM, the runs written.
func abRun(ctx context.Context, o ABOptions) ([2]*results.Run, [2]string, error) {
	rc := &o.Sweep
	stderr := rc.Progress
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
	kos, labels, err := abModules(root, k, o, tmp)
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
	if ctx.Err() != nil { // while building: nothing ran
		return runs, labels, ErrNothingCompleted
	}
	cmd, err := writeGuestJob(share, guestJob{Sweep: *rc, Modules: [2]string{"/base.ko", "/new.ko"}, Labels: labels})
	if err != nil {
		return runs, labels, err
	}
	script := guestScript(cmd)
	fmt.Fprintf(stderr, "booting %s under qemu (software emulation): base %s and new %s, interleaved\n", k.Version, labels[0], labels[1])
	res, err := bootGuest(ctx, rc.Hard, vm.Config{
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
	interrupted := errors.Is(err, ErrNothingCompleted)
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
	if runs, err = readAB(share, interrupted); err != nil {
		return runs, labels, err
	}
	return runs, labels, writeAB(rc.Out, runs)
}

// abModules puts the two builds AB compares into tmp (base.ko, new.ko)
// and names them: the base built at its revision, the new copied from its
// file or, without one, built from the working tree.
func abModules(root string, k vm.Kernel, o ABOptions, tmp string) (kos, labels [2]string, err error) {
	kos = [2]string{filepath.Join(tmp, "base.ko"), filepath.Join(tmp, "new.ko")}
	if labels[0], err = buildBase(root, k, o.Base, tmp, kos[0]); err != nil {
		return kos, labels, err
	}
	if o.New != "" {
		labels[1] = o.New
		err = copyFile(o.New, kos[1])
	} else {
		labels[1] = "working tree"
		var ko string
		if ko, err = vm.BuildModule(root, k); err == nil {
			err = copyFile(ko, kos[1]) // a snapshot: others may rebuild kmod/ meanwhile
		}
	}
	return kos, labels, err
}

// readAB reads the runs the guest wrote into share. interrupted, a side
// without a sample stays nil; neither side having one is
// ErrNothingCompleted.
func readAB(share string, interrupted bool) (runs [2]*results.Run, err error) {
	for i, sub := range []string{ABBaseDir, ABNewDir} {
		p := filepath.Join(share, filepath.Base(GuestOut), sub, ResultsFile)
		if interrupted && !fileExists(p) {
			continue // this side had no sample
		}
		if runs[i], err = results.Read(p); err != nil {
			return runs, err
		}
	}
	if interrupted && runs[0] == nil && runs[1] == nil {
		return runs, ErrNothingCompleted
	}
	return runs, nil
}

// writeAB writes the runs of AB into dir's base/ and new/; a side without
// a sample (nil) gets no folder.
func writeAB(dir string, runs [2]*results.Run) error {
	for i, sub := range []string{ABBaseDir, ABNewDir} {
		if runs[i] == nil {
			continue
		}
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := results.Write(filepath.Join(d, ResultsFile), runs[i]); err != nil {
			return err
		}
	}
	return nil
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
	label, rev, err := resolveRevision(root, ref)
	if err != nil {
		return "", err
	}
	src := filepath.Join(tmp, "base-src")
	if err := exportRevision(root, ref, rev, src, "kmod"); err != nil {
		return "", err
	}
	ko, err := vm.BuildModule(src, k)
	if err != nil {
		return "", err
	}
	return label, copyFile(ko, dst)
}

// resolveRevision names ref of the checkout root as a commit: its label
// ("ref (abbreviated hash)") and the hash.
func resolveRevision(root, ref string) (label, rev string, err error) {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--short", ref+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("base build %q: neither a .ko file nor a git revision of %s", ref, root)
	}
	rev = strings.TrimSpace(string(out))
	return ref + " (" + rev + ")", rev, nil
}

// exportRevision unpacks paths (all of the tree when none) of revision
// rev (named ref in errors) into the new folder dst, with git archive.
func exportRevision(root, ref, rev, dst string, paths ...string) error {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	archive := exec.Command("git", append([]string{"-C", root, "archive", "--format=tar", rev}, paths...)...)
	untar := exec.Command("tar", "-x", "-C", dst)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var aerr strings.Builder
	archive.Stderr = &aerr
	if err := archive.Start(); err != nil {
		return err
	}
	tarOut, tarErr := untar.CombinedOutput()
	if err := archive.Wait(); err != nil {
		return fmt.Errorf("git archive %s %s: %v: %s", ref, strings.Join(paths, " "), err, aerr.String())
	}
	if tarErr != nil {
		return fmt.Errorf("unpacking %s of %s: %v: %s", cmp.Or(strings.Join(paths, " "), "the tree"), ref, tarErr, tarOut)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// ABGuest is the guest's side of AB, inside the VM: o's kmod sweep with
// the module files kos loaded in turn, labelled labels, written into
// o.Out's base/ and new/. A side without a sample is nil.
func ABGuest(ctx context.Context, o Options, kos, labels [2]string) ([2]*results.Run, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	runs, err := abSweep(ctx, &o, kos, labels, newProgress(o.Progress))
	if err != nil {
		return runs, err
	}
	return runs, writeAB(o.Out, runs)
}

// abSweep runs cfg's sweep cfg.Reps times for each module, alternating
// A B, B A, …: each load measures one sample of every step in a fresh
// topology, so each step's samples of the two builds interleave in time.
// Cancelling ctx stops it at a sample boundary: both runs are marked
// partial, and a side without a sample is nil.
func abSweep(ctx context.Context, cfg *Options, kos, labels [2]string, prog *progress) ([2]*results.Run, error) {
	var runs [2]*results.Run
	for i := range runs {
		src := sourceInfo(cfg)
		src.Detail += "; ab " + []string{"base", "new"}[i] + ": " + labels[i]
		runs[i] = &results.Run{
			SchemaVersion: results.SchemaVersion,
			ToolVersion:   toolVersion,
			Started:       time.Now().UTC(),
			Environment:   environment(cfg),
			Source:        src,
			Params: results.Params{
				RatesPPS: cfg.Rates, RcvBufs: cfg.RcvBufs, ConsumerDelays: cfg.Delays,
				StepDuration: cfg.Duration, Repetitions: cfg.Reps, NoENOBUFS: cfg.NoENOBUFS,
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
			return runs, ErrNothingCompleted
		}
		return runs, nil
	}
	prog.begin(2 * len(runs[0].Steps) * cfg.Reps)
	for rep := 0; rep < cfg.Reps; rep++ {
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
func abOnce(ctx context.Context, cfg *Options, run *results.Run, rep int, prog *progress) (*results.StepKey, error) {
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
			rate: st.RatePPS, duration: cfg.Duration, rcvbuf: st.RcvBuf, delay: st.ConsumerDelay,
			noENOBUFS: cfg.NoENOBUFS, latency: true, probe: true,
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
