package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/vm"
)

// runInVM runs the same sweep inside the qemu harness (with the module
// loaded for kmod; with nf_tables and nfnetlink_log for nflog, so the peer
// runs under the same emulation), then reads the results back from the
// shared folder. The guest only measures; plots and files are made here.
// An interrupt is forwarded into the guest (bootGuest), which stops at a
// sample boundary and writes a partial run like a run on the host.
func runInVM(ctx context.Context, cfg *Options) (*results.Run, error) {
	stderr := cfg.Progress
	co, err := vm.PrepareCheckoutKernel("imp2-bench-vm-", cfg.Kernel)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	k, ko, share := co.Kernel, co.Module, co.Share
	if cfg.Source == results.SourceBPF {
		if err := checkBPFKernel(k.Version); err != nil {
			return nil, err
		}
	}
	bin, err := co.BuildGo("./cmd/bench", "imp2-bench", false)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil { // while building: nothing ran
		return nil, ErrNothingCompleted
	}

	cmd, err := writeGuestJob(share, guestJob{Sweep: *cfg})
	if err != nil {
		return nil, err
	}
	script := guestScript(cmd)
	modules, bins := []string{"veth"}, []string{"ip"}
	switch cfg.Source {
	case results.SourceKmod:
		script = "insmod /imp2.ko || exit 1\n" + script
	case results.SourceNFLOG:
		modules = append(modules, "nf_tables", "nft_log", "nfnetlink_log")
		bins = append(bins, "nft")
	case results.SourceBPFTC:
		modules = append(modules, "sch_ingress", "cls_bpf")
	}
	fmt.Fprintf(stderr, "booting %s under qemu (software emulation) for the %s sweep\n", k.Version, cfg.Source)
	res, err := bootGuest(ctx, cfg.Hard, vm.Config{
		Kernel:        k,
		KernelModules: modules,
		HostBinaries:  bins,
		Files: []vm.File{
			{Guest: "/imp2-bench", Host: bin},
			{Guest: "/imp2.ko", Host: ko, Mode: 0o644},
		},
		ShareDir: share,
		Script:   script,
		Memory:   "2G",
		Timeout:  vmTimeout(cfg),
		Console:  stderr,
	}, stderr)
	out := filepath.Join(share, filepath.Base(GuestOut))
	if errors.Is(err, ErrNothingCompleted) && fileExists(filepath.Join(out, ResultsFile)) {
		// Stopped after the guest wrote its results (atomically): keep them.
		fmt.Fprintln(stderr, "imp2-bench: the VM was stopped; the guest had written its results")
		return readGuestRun(cfg, out)
	}
	if err != nil {
		return nil, err
	}
	if len(res.Dmesg) > 0 {
		return nil, fmt.Errorf("the guest kernel logged problems during the sweep:\n  %s", strings.Join(res.Dmesg, "\n  "))
	}
	switch {
	case res.ExitCode == exitInterrupted && !fileExists(filepath.Join(out, ResultsFile)):
		return nil, ErrNothingCompleted
	case res.ExitCode != 0 && res.ExitCode != exitInterrupted:
		return nil, fmt.Errorf("the sweep inside the VM failed (status %d)", res.ExitCode)
	}
	fmt.Fprintf(stderr, "VM boot to result: %.1f s\n", res.Elapsed.Seconds())
	return readGuestRun(cfg, out)
}

// readGuestRun reads the guest's results and trace from its out folder
// in the share, and copies the trace into cfg.Out.
func readGuestRun(cfg *Options, out string) (*results.Run, error) {
	run, err := results.Read(filepath.Join(out, ResultsFile))
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(out, TraceFile)); err == nil {
		if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(cfg.Out, TraceFile), b, 0o644); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// stopFile is what the host creates in the share to interrupt the guest.
const stopFile = "stop"

// guestGrace is how long an interrupted guest has to drop its sample,
// write what completed over 9p and power off before the VM is stopped.
const guestGrace = 2 * time.Minute

// guestScript runs cmd (an imp2-bench command) in the background and
// forwards the host's interrupt into it: once the host creates
// /share/stop, cmd gets SIGINT and stops at a sample boundary, writing what
// completed exactly as on the host. The script's status is cmd's.
func guestScript(cmd string) string {
	return cmd + ` &
pid=$!
(while [ ! -e /share/` + stopFile + ` ]; do kill -0 $pid 2>/dev/null || exit 0; sleep 0.2; done; kill -INT $pid) &
wait $pid
`
}

// bootGuest boots the VM of cfg (whose Script is a guestScript). The first
// SIGINT or SIGTERM asks the guest to stop after its current sample; a
// second one, or guestGrace without the guest powering off, stops the VM
// at once, and then the error says whether the guest wrote its results.
func bootGuest(run context.Context, hard <-chan struct{}, cfg vm.Config, stderr io.Writer) (*vm.Result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-hard:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		select {
		case <-run.Done():
		case <-ctx.Done():
			return
		}
		if err := os.WriteFile(filepath.Join(cfg.ShareDir, stopFile), nil, 0o644); err != nil {
			fmt.Fprintf(stderr, "imp2-bench: cannot ask the guest to stop (%v): stopping the VM\n", err)
			cancel()
			return
		}
		fmt.Fprintf(stderr, "imp2-bench: %s: the guest drops its current sample and writes what completed (interrupt again to stop the VM at once)\n", signalName(run))
		select {
		case <-time.After(guestGrace):
			cancel()
		case <-ctx.Done():
		}
	}()
	res, err := vm.Run(ctx, cfg)
	if err != nil && ctx.Err() != nil && run.Err() != nil {
		return res, fmt.Errorf("%w (the VM was stopped before the guest finished writing)", ErrNothingCompleted)
	}
	return res, err
}

// exitInterrupted is the status of an imp2-bench command interrupted by
// SIGINT or SIGTERM, as the guest's script reports it.
const exitInterrupted = 130

// vmTimeout allows each sample three times its flood plus a second, the
// overhead samples and the boot.
func vmTimeout(cfg *Options) time.Duration {
	samples := len(cfg.Rates)*len(cfg.RcvBufs)*len(cfg.Delays)*cfg.Reps + 10
	return 2*time.Minute + time.Duration(samples)*(3*cfg.Duration+time.Second)
}
