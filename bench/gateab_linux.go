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
	"path/filepath"
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
	if o.ICount == "none" {
		o.ICount = ""
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
	job := gateJob{Reps: o.Reps, Count: o.Count, Probe: -1}
	files, err := gateBuilds(root, k, o, tmp, res, &job)
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
	job.Labels = res.Labels
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
