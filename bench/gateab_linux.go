package bench

// The CI gate as an A/B decision: the candidate module (this checkout's
// kmod/) against the base revision's, interleaved in one VM boot like ab,
// on a cost metric chosen for its power under emulation (GateMetrics),
// plus the exact counts against the committed per-kernel baseline.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imp2/imp2/internal/vm"
)

// GateAB builds the base and the candidates, boots the VM once, measures
// them interleaved and decides each candidate against the base.
func GateAB(ctx context.Context, o GateABOptions) (*GateABResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	start := time.Now()
	if o.Baseline != "" { // before minutes of building and booting
		if _, err := ReadExactBaseline(filepath.Join(o.Baseline, ExactBaselineFile)); err != nil {
			return nil, err
		}
	}
	root, err := vm.RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("the gate builds the modules and the guest binary from the checkout: %w", err)
	}
	k, err := vm.FindKernel()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "imp2-gate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res := &GateABResult{}
	files, err := gateBuilds(root, k, o, tmp, res)
	if err != nil {
		return res, err
	}
	share := filepath.Join(tmp, "share")
	if err := os.Mkdir(share, 0o777); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ErrNothingCompleted
	}
	job := gateJob{Labels: res.Labels, Reps: o.Reps, Count: o.Count, Probe: -1}
	for i := range res.Labels {
		job.Modules = append(job.Modules, fmt.Sprintf("/m%d.ko", i))
	}
	if o.Baseline != "" {
		job.Probe, job.ProbeRcvBufs = 1, gateProbeRcvBufs
	}
	samples, err := gateBoot(ctx, o, k, files, job, share)
	if err != nil {
		return res, err
	}
	res.Kernel, res.Samples = samples.Kernel, samples.Samples
	for i := 1; i < len(res.Samples); i++ {
		res.Decisions = append(res.Decisions, o.Rule.gateVerdict(res.Samples[0], res.Samples[i]))
	}
	if o.Baseline != "" {
		if res.Exact, err = CheckExact(filepath.Join(o.Baseline, ExactBaselineFile), samples.Kernel, samples.BurstHeld, o.Rebaseline); err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// gateProbeRcvBufs are the receive buffers of the exact counts: the
// kernel's smallest useful one and its default (the old gate's sweep).
var gateProbeRcvBufs = []int{16384, 212992}

// gateBuilds builds the base (o.Base, or the merge-base with main) and
// every candidate into tmp, names them in res.Labels and returns the
// guest files.
func gateBuilds(root string, k vm.Kernel, o GateABOptions, tmp string, res *GateABResult) ([]vm.File, error) {
	base := o.Base
	if base == "" {
		var err error
		if base, err = mergeBase(root); err != nil {
			return nil, err
		}
	}
	ko := filepath.Join(tmp, "m0.ko")
	label, err := buildBase(root, k, base, tmp, ko)
	if err != nil {
		return nil, err
	}
	if o.Base == "" {
		_, short, _ := strings.Cut(label, " ")
		label = "merge-base with main " + short
	}
	res.Labels = []string{"base " + label}
	files := []vm.File{{Guest: "/m0.ko", Host: ko, Mode: 0o644}}
	for i, c := range o.Candidates {
		ko := filepath.Join(tmp, fmt.Sprintf("m%d.ko", i+1))
		if err := buildCandidate(root, k, c.DelayNS, tmp, ko); err != nil {
			return nil, err
		}
		res.Labels = append(res.Labels, c.label())
		files = append(files, vm.File{Guest: fmt.Sprintf("/m%d.ko", i+1), Host: ko, Mode: 0o644})
	}
	bin := filepath.Join(tmp, "imp2-bench")
	if err := vm.BuildGo(root, "./cmd/bench", bin, false); err != nil {
		return nil, err
	}
	return append(files, vm.File{Guest: "/imp2-bench", Host: bin}), nil
}

// mergeBase is the merge-base of HEAD with main (or origin/main): on a
// clean clone of main, HEAD itself.
func mergeBase(root string) (string, error) {
	for _, ref := range []string{"main", "origin/main"} {
		out, err := exec.Command("git", "-C", root, "merge-base", "HEAD", ref).Output()
		if err == nil {
			return strings.TrimSpace(string(out)), nil
		}
	}
	return "", fmt.Errorf("gate: %s has no branch main or origin/main to take the base revision from; name one with -base REF", root)
}

// buildCandidate builds the working tree's kmod/ in a copy of its own
// (so that a variant never leaves its imp2.ko in kmod/), with the test
// delay when delayNS > 0.
func buildCandidate(root string, k vm.Kernel, delayNS int, tmp, dst string) error {
	src, err := os.MkdirTemp(tmp, "cand-")
	if err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "kmod"), src).CombinedOutput(); err != nil {
		return fmt.Errorf("copying kmod/: %v: %s", err, out)
	}
	// A copy of built objects would be reused as they are: build afresh.
	if out, err := exec.Command("make", "-s", "-C", filepath.Join(src, "kmod"), "clean").CombinedOutput(); err != nil {
		return fmt.Errorf("make clean in the copy of kmod/: %v: %s", err, out)
	}
	var vars []string
	if delayNS > 0 {
		vars = append(vars, "IMP2_TEST_DELAY_NS="+strconv.Itoa(delayNS))
	}
	ko, err := vm.BuildModule(src, k, vars...)
	if err != nil {
		return err
	}
	return copyFile(ko, dst)
}

// gateBoot boots the VM with files and runs job in it.
func gateBoot(ctx context.Context, o GateABOptions, k vm.Kernel, files []vm.File, job gateJob, share string) (*gateSamples, error) {
	b, err := jsonBytes(guestJob{Gate: &job})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(share, guestJobFile), b, 0o644); err != nil {
		return nil, err
	}
	cmd := fmt.Sprintf("%s=1 /imp2-bench %s %s/%s >/dev/null", guestEnv, GuestCommand, guestShare, guestJobFile)
	fmt.Fprintf(o.Progress, "gate: booting %s under qemu%s, %d vCPU: %s, %d repetitions of %d packets each, interleaved\n",
		k.Version, icountNote(o.ICount), cmp.Or(o.CPUs, DefaultGateCPUs), strings.Join(job.Labels, " | "), job.Reps, job.Count)
	res, err := bootGuest(ctx, o.Hard, vm.Config{
		Kernel: k, KernelModules: []string{"veth"}, HostBinaries: []string{"ip"},
		Files: files, ShareDir: share, Script: guestScript(cmd), Memory: "1G",
		ICount: o.ICount, CPUs: cmp.Or(o.CPUs, DefaultGateCPUs), Timeout: 10 * time.Minute, Console: o.Progress,
	}, o.Progress)
	switch {
	case err != nil:
		return nil, err
	case len(res.Dmesg) > 0:
		return nil, fmt.Errorf("the guest kernel logged problems during the gate:\n  %s", strings.Join(res.Dmesg, "\n  "))
	case res.ExitCode == exitInterrupted:
		return nil, ErrNothingCompleted
	case res.ExitCode != 0:
		return nil, fmt.Errorf("the gate's measurements inside the VM failed (status %d)", res.ExitCode)
	}
	fmt.Fprintf(o.Progress, "gate: VM boot to result: %.1f s\n", res.Elapsed.Seconds())
	var s gateSamples
	if err := readJSON(filepath.Join(share, filepath.Base(GuestOut), gateGuestFile), &s); err != nil {
		return nil, err
	}
	if len(s.Samples) != len(job.Modules) {
		return nil, fmt.Errorf("the guest measured %d modules of %d", len(s.Samples), len(job.Modules))
	}
	return &s, nil
}

func icountNote(ic string) string {
	if ic == "" {
		return " (software emulation)"
	}
	return " (software emulation, -icount " + ic + ")"
}
