// Package kmodtest tests the real imp2 module inside a VM.
//
// On the host, TestMain builds the module, this package's test binary and
// the legacy C consumer, boots the installed Debian kernel with them
// (internal/vm) and relays the guest's test output and status: `go test
// ./internal/kmodtest` runs the module's tests. Inside the guest
// (IMP2_GUEST=1) the same binary loads imp2.ko and runs the tests.
package kmodtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/vm"
)

const (
	guestEnv    = "IMP2_GUEST"
	guestModule = "/imp2.ko"
	guestLegacy = "/legacy-consumer"
	guestRecord = "/bin/imp2-record"
	guestReplay = "/bin/imp2-replay"
)

func TestMain(m *testing.M) {
	if os.Getenv(guestEnv) == "" {
		os.Exit(runInVM())
	}
	if out, err := exec.Command("insmod", guestModule).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "insmod %s: %v: %s\n", guestModule, err, out)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// runInVM is the host side: it returns the exit status for this process.
// IMP2_KERNELS (all, or a list of matrix names) runs the suite on each of
// those kernels in turn; otherwise on the one vm.FindKernel picks.
func runInVM() int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "kmodtest: %v\n", err)
		return 1
	}
	names, err := vm.SelectedKernels()
	if err != nil {
		return fail(err)
	}
	co, err := vm.NewCheckout("kmodtest-")
	if err != nil {
		return fail(err)
	}
	defer co.Close()
	g, err := buildGuest(co)
	if err != nil {
		return fail(err)
	}
	if names == nil {
		k, err := vm.FindKernel()
		if err != nil {
			return fail(err)
		}
		if err := co.UseKernel(k); err != nil {
			return fail(err)
		}
		return g.run(co)
	}
	var summary []string
	status := 0
	for _, name := range names {
		start := time.Now()
		verdict := func() string {
			m, err := vm.LookupKernel(name)
			if err != nil {
				return fmt.Sprintf("FAIL: %v", err)
			}
			k, err := m.Fetch()
			if err != nil {
				return fmt.Sprintf("FAIL: fetch: %v", err)
			}
			if err := co.UseKernel(k); err != nil {
				return fmt.Sprintf("FAIL: module build: %v", err)
			}
			if rc := g.run(co); rc != 0 {
				return fmt.Sprintf("FAIL: suite status %d", rc)
			}
			return "ok"
		}()
		if verdict != "ok" {
			status = 1
			fmt.Fprintf(os.Stderr, "kmodtest: kernel %s: %s\n", name, verdict)
		}
		summary = append(summary, fmt.Sprintf("  %-7s %6.1f s  %s", name, time.Since(start).Seconds(), firstLine(verdict)))
	}
	fmt.Printf("kmodtest: matrix (fetch, build, boot and suite per kernel):\n%s\n", strings.Join(summary, "\n"))
	return status
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// guest is what the guest runs besides the module, built once for every
// kernel: this package's test binary, the Go tools, the legacy consumer.
type guest struct{ bin, record, replay, legacy string }

func buildGuest(co *vm.Checkout) (*guest, error) {
	var g guest
	var err error
	if g.bin, err = co.BuildGo("./internal/kmodtest", "kmodtest.test", true); err != nil {
		return nil, err
	}
	if g.record, err = co.BuildGo("./cmd/record", "imp2-record", false); err != nil {
		return nil, err
	}
	if g.replay, err = co.BuildGo("./cmd/replay", "imp2-replay", false); err != nil {
		return nil, err
	}
	g.legacy = filepath.Join(co.Dir, "legacy-consumer")
	src := filepath.Join(co.Root, "internal", "kmodtest", "testdata", "legacy_consumer.c")
	if out, err := exec.Command("gcc", "-static", "-O2", "-Wall", "-o", g.legacy, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the legacy consumer (packages gcc, libc6-dev): %v\n%s", err, out)
	}
	return &g, nil
}

// run boots co's kernel with co's module and runs the suite there.
func (g *guest) run(co *vm.Checkout) int {
	k := co.Kernel
	res, err := vm.Run(context.Background(), vm.Config{
		Kernel: k,
		Files: []vm.File{
			{Guest: "/kmodtest.test", Host: g.bin},
			{Guest: guestModule, Host: co.Module, Mode: 0o644},
			{Guest: guestLegacy, Host: g.legacy},
			{Guest: guestRecord, Host: g.record},
			{Guest: guestReplay, Host: g.replay},
		},
		Script:  guestEnv + "=1 /kmodtest.test " + vm.ShellQuote(guestArgs(os.Args[1:])),
		Timeout: 8 * time.Minute,
		Console: os.Stdout,

		// imp2-replay -to icmp: veth, ip netns; nft for -netns-dst.
		// nlmon: TestNlmonCapture.
		KernelModules: []string{"veth", "nf_tables", "nlmon"},
		HostBinaries:  []string{"ip", "nft"},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmodtest: kernel %s: %v\n", k.Label(), err)
		return 1
	}
	fmt.Printf("kmodtest: VM boot to result in %.1f s (kernel %s)\n", res.Elapsed.Seconds(), k.Label())
	if len(res.Dmesg) > 0 {
		fmt.Printf("kmodtest: the guest kernel %s logged problems:\n  %s\n", k.Label(), strings.Join(res.Dmesg, "\n  "))
		return 1
	}
	return res.ExitCode
}

// guestArgs keeps the go test flags that mean the same inside the guest and
// drops those that name host files (test log, profiles, cover dirs).
func guestArgs(args []string) []string {
	var keep []string
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "test.v", "test.run", "test.skip", "test.count", "test.short",
			"test.failfast", "test.timeout", "test.paniconexit0":
			keep = append(keep, a)
		}
	}
	return keep
}
