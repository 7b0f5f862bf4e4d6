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
func runInVM() int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "kmodtest: %v\n", err)
		return 1
	}
	co, err := vm.PrepareCheckout("kmodtest-")
	if err != nil {
		return fail(err)
	}
	defer co.Close()
	k, ko := co.Kernel, co.Module
	bin, err := co.BuildGo("./internal/kmodtest", "kmodtest.test", true)
	if err != nil {
		return fail(err)
	}
	record, err := co.BuildGo("./cmd/record", "imp2-record", false)
	if err != nil {
		return fail(err)
	}
	replay, err := co.BuildGo("./cmd/replay", "imp2-replay", false)
	if err != nil {
		return fail(err)
	}
	legacy := filepath.Join(co.Dir, "legacy-consumer")
	src := filepath.Join(co.Root, "internal", "kmodtest", "testdata", "legacy_consumer.c")
	if out, err := exec.Command("gcc", "-static", "-O2", "-Wall", "-o", legacy, src).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("building the legacy consumer (packages gcc, libc6-dev): %v\n%s", err, out))
	}

	res, err := vm.Run(context.Background(), vm.Config{
		Kernel: k,
		Files: []vm.File{
			{Guest: "/kmodtest.test", Host: bin},
			{Guest: guestModule, Host: ko, Mode: 0o644},
			{Guest: guestLegacy, Host: legacy},
			{Guest: guestRecord, Host: record},
			{Guest: guestReplay, Host: replay},
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
		return fail(err)
	}
	fmt.Printf("kmodtest: VM boot to result in %.1f s (kernel %s)\n", res.Elapsed.Seconds(), k.Version)
	if len(res.Dmesg) > 0 {
		fmt.Printf("kmodtest: the guest kernel logged problems:\n  %s\n", strings.Join(res.Dmesg, "\n  "))
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
