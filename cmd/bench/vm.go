package main

import (
	"context"
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
func runInVM(ctx context.Context, cfg *runConfig, stderr io.Writer) (*results.Run, error) {
	co, err := vm.PrepareCheckoutKernel("imp2-bench-vm-", cfg.kernel)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	k, ko, share := co.Kernel, co.Module, co.Share
	bin, err := co.BuildGo("./cmd/bench", "imp2-bench", false)
	if err != nil {
		return nil, err
	}

	args := append(guestArgs(cfg.args), "-out", "/share/out", "-plot=false")
	script := fmt.Sprintf("%s=1 /imp2-bench run %s >/dev/null", guestEnv, vm.ShellQuote(args))
	modules, bins := []string{"veth"}, []string{"ip"}
	switch cfg.source {
	case results.SourceKmod:
		script = "insmod /imp2.ko || exit 1\n" + script
	case results.SourceNFLOG:
		modules = append(modules, "nf_tables", "nft_log", "nfnetlink_log")
		bins = append(bins, "nft")
	}
	fmt.Fprintf(stderr, "booting %s under qemu (software emulation) for the %s sweep\n", k.Version, cfg.source)
	res, err := vm.Run(ctx, vm.Config{
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
	})
	if err != nil {
		return nil, err
	}
	if len(res.Dmesg) > 0 {
		return nil, fmt.Errorf("the guest kernel logged problems during the sweep:\n  %s", strings.Join(res.Dmesg, "\n  "))
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("the sweep inside the VM failed (status %d)", res.ExitCode)
	}
	fmt.Fprintf(stderr, "VM boot to result: %.1f s\n", res.Elapsed.Seconds())
	out := filepath.Join(share, "out")
	run, err := results.Read(filepath.Join(out, resultsFile))
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(out, traceFile)); err == nil {
		if err := os.MkdirAll(cfg.out, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(cfg.out, traceFile), b, 0o644); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// guestArgs drops the flags that mean something else in the guest.
func guestArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch name {
		case "vm", "plot":
		case "out", "kernel":
			if !hasValue {
				i++ // its value
			}
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// vmTimeout allows each sample three times its flood plus a second, the
// overhead samples and the boot.
func vmTimeout(cfg *runConfig) time.Duration {
	samples := len(cfg.rates)*len(cfg.rcvbufs)*len(cfg.delays)*cfg.reps + 10
	return 2*time.Minute + time.Duration(samples)*(3*cfg.duration+time.Second)
}
