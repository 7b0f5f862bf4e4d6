// Package bpfvm runs internal/bpfnf's tests inside the VM, on a kernel
// with netfilter BPF links: the program, its ring and its drop accounting
// on a Debian kernel rather than on whatever kernel the host has.
package bpfvm

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/vm"
)

// defaultKernel is the matrix kernel the suite boots when IMP2_KERNEL
// names none: netfilter BPF links need 6.4, and the default kernel (6.1)
// is older. IMP2_KERNEL=6.1 runs the suite there, where it checks that
// the netfilter program says why it cannot attach, and the tc ingress
// fallback.
const defaultKernel = "6.12"

// TestBPFNFInVM boots the kernel with bpfnf's test binary and runs it
// with IMP2_BPF_REQUIRE set (a test that cannot get BPF or namespaces
// fails instead of skipping); the kernel must log no problem.
// IMP2_KERNELS (all, or a list of matrix names) runs it on each of those
// kernels in turn.
func TestBPFNFInVM(t *testing.T) {
	names, err := vm.SelectedKernels()
	if err != nil {
		t.Fatal(err)
	}
	co, err := vm.NewCheckout("bpfvm-")
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	bin, err := co.BuildGo("./internal/bpfnf", "bpfnf.test", true)
	if err != nil {
		t.Fatal(err)
	}
	if names == nil {
		k, err := kernel()
		if err != nil {
			t.Fatal(err)
		}
		runSuite(t, k, bin)
		return
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m, err := vm.LookupKernel(name)
			if err != nil {
				t.Fatal(err)
			}
			k, err := m.Fetch()
			if err != nil {
				t.Fatal(err)
			}
			runSuite(t, k, bin)
		})
	}
}

// runSuite boots k with bpfnf's test binary bin and checks the outcome.
func runSuite(t *testing.T, k vm.Kernel, bin string) {
	var console strings.Builder
	var out io.Writer = &console
	if testing.Verbose() {
		out = io.MultiWriter(&console, os.Stdout)
	}
	res, err := vm.Run(context.Background(), vm.Config{
		// sch_ingress and cls_bpf: the tc ingress fallback's clsact
		// qdisc and filter.
		Kernel:        k,
		KernelModules: []string{"veth", "sch_ingress", "cls_bpf"},
		HostBinaries:  []string{"ip"},
		Files:         []vm.File{{Guest: "/bpfnf.test", Host: bin}},
		Script:        "cd / && IMP2_BPF_REQUIRE=1 /bpfnf.test -test.v -test.timeout 4m",
		Timeout:       6 * time.Minute,
		Console:       out,
	})
	if err != nil {
		t.Fatalf("kernel %s: %v", k.Label(), err)
	}
	t.Logf("kernel %s: boot to result %.1f s", k.Label(), res.Elapsed.Seconds())
	if len(res.Dmesg) > 0 {
		t.Errorf("the guest kernel %s logged problems:\n  %s", k.Label(), strings.Join(res.Dmesg, "\n  "))
	}
	if res.ExitCode != 0 {
		t.Fatalf("bpfnf's tests failed in the guest on %s (status %d):\n%s", k.Label(), res.ExitCode, res.ConsoleTail(40))
	}
	if !strings.Contains(console.String(), "--- PASS: TestTinyRingDropsCountedExactly/tc_ingress") {
		t.Fatalf("the guest did not pass the drop test at tc ingress on %s:\n%s", k.Label(), res.ConsoleTail(40))
	}
}

func kernel() (vm.Kernel, error) {
	if os.Getenv("IMP2_KERNEL") != "" {
		return vm.FindKernel()
	}
	m, err := vm.LookupKernel(defaultKernel)
	if err != nil {
		return vm.Kernel{}, err
	}
	return m.Fetch()
}
