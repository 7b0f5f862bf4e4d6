package vm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMatrixPinsEveryPackage(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Matrix {
		if seen[m.Name] {
			t.Errorf("kernel %q listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Release == "" || m.Version == "" || suiteURIs[m.Suite] == "" {
			t.Errorf("%s: release %q, version %q, suite %q (with no archive): want all pinned", m.Name, m.Release, m.Version, m.Suite)
		}
		has := func(prefix string) bool {
			for _, p := range m.Packages {
				if strings.HasPrefix(p, prefix) {
					return true
				}
			}
			return false
		}
		if !has("linux-headers-"+m.Release) || !has("linux-kbuild-") || !(has("linux-image-"+m.Release) || has("linux-modules-"+m.Release)) {
			t.Errorf("%s: packages %v lack the image/modules, headers or kbuild of %s", m.Name, m.Packages, m.Release)
		}
		if m.BuildRoot != "" && buildRootPackages[m.BuildRoot] == nil {
			t.Errorf("%s: build root %q has no recipe", m.Name, m.BuildRoot)
		}
	}
	if Matrix[0].Name != "6.1" {
		t.Errorf("first (default) kernel is %s, want Debian 12's 6.1", Matrix[0].Name)
	}
}

func TestSelectedKernelsReadsList(t *testing.T) {
	for _, c := range []struct {
		env  string
		want string // names joined by ",", or the text the error must hold
		err  bool
	}{
		{"", "", false},
		{"all", strings.Join(MatrixNames(), ","), false},
		{" 7.3 , 6.1 ", "7.3,6.1", false},
		{"6.1,9.9", "9.9", true},
		{",", "names no kernel", true},
	} {
		t.Setenv("IMP2_KERNELS", c.env)
		got, err := SelectedKernels()
		if c.err {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("IMP2_KERNELS=%q: err %v, want one naming %q", c.env, err, c.want)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != c.want {
			t.Errorf("IMP2_KERNELS=%q: %v, %v; want %s", c.env, got, err, c.want)
		}
	}
	t.Setenv("IMP2_KERNEL", "5.4")
	if _, err := FindKernel(); err == nil || !strings.Contains(err.Error(), "IMP2_KERNEL=5.4") {
		t.Errorf("IMP2_KERNEL=5.4: err %v, want one naming it", err)
	}
}

// TestModuleDataDecompresses: trixie's kernels ship .ko.xz, and the
// guest's busybox insmod cannot load those; the initramfs gets them plain.
func TestModuleDataDecompresses(t *testing.T) {
	dir := t.TempDir()
	plain := []byte("\x7fELF not really a module, but bytes that must survive")
	for _, c := range []struct{ tool, suffix string }{{"xz", ".xz"}, {"zstd", ".zst"}, {"", ""}} {
		p := filepath.Join(dir, "m"+c.tool+".ko")
		if err := os.WriteFile(p, plain, 0o644); err != nil {
			t.Fatal(err)
		}
		if c.tool != "" {
			if out, err := exec.Command(c.tool, "-q", p).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v %s", c.tool, err, out)
			}
		}
		name, data, err := moduleData(p + c.suffix)
		if err != nil || name != "m"+c.tool+".ko" || !bytes.Equal(data, plain) {
			t.Errorf("moduleData(%s) = %q, %q, %v; want m%s.ko with the original bytes", p+c.suffix, name, data, err, c.tool)
		}
	}
	bad := filepath.Join(dir, "broken.ko.xz")
	os.WriteFile(bad, []byte("not xz"), 0o644)
	if _, _, err := moduleData(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt .ko.xz: err %v, want one naming the file", err)
	}
}

// TestResolveModulesSkipsBuiltin: from 6.18 Debian builds virtio_pci into
// the image; the 9p share must still mount, loading only the rest.
func TestResolveModulesSkipsBuiltin(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modules.dep", "kernel/net/9p/9pnet.ko.xz:\nkernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz\n")
	write("modules.builtin", "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/virtio/virtio.ko\n")
	got, err := Kernel{Modules: dir}.resolveModules([]string{"virtio_pci", "9pnet_virtio"})
	want := "kernel/net/9p/9pnet.ko.xz kernel/net/9p/9pnet_virtio.ko.xz"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("resolveModules = %v, %v; want %s", got, err, want)
	}
}

// TestMatrixKernelsBootWithModule fetches each kernel IMP2_KERNELS names
// (by default the first, Debian 12's 6.1, which is the installed one),
// builds imp2.ko against its headers (in its build root where it has
// one), boots it with the module, the 9p share and veth loaded, and
// reloads the module 150 times under ping traffic without a kernel
// problem.
func TestMatrixKernelsBootWithModule(t *testing.T) {
	if err := CheckHost(); err != nil {
		t.Fatal(err)
	}
	names, err := SelectedKernels()
	if err != nil {
		t.Fatal(err)
	}
	if names == nil {
		names = []string{Matrix[0].Name}
	}
	co, err := NewCheckout("vm-matrix-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m, _ := LookupKernel(name)
			k, err := m.Fetch()
			if err != nil {
				t.Fatal(err)
			}
			again, err := m.Fetch()
			if err != nil || again != k {
				t.Fatalf("second Fetch = %+v, %v; want the same kernel %+v", again, err, k)
			}
			if err := co.UseKernel(k); err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), Config{
				Kernel:        k,
				KernelModules: []string{"veth"},
				HostBinaries:  []string{"ip"},
				ShareDir:      co.Share,
				Files:         []File{{Guest: "/imp2.ko", Host: co.Module, Mode: 0o644}},
				// The reloads flip the netfilter hook's static key while
				// ping keeps ip_rcv busy: the code patching that needs
				// one qemu thread on newer kernels, and took an int3
				// oops once on 6.1 too.
				SingleThread: true,
				Script: `insmod /imp2.ko || exit 10
grep -q '^imp2 ' /proc/modules || exit 11
/usr/bin/ip link add va type veth peer name vb || exit 12
ping -A -q 127.0.0.1 >/dev/null & ping -A -q 127.0.0.2 >/dev/null &
i=0; while [ $i -lt 150 ]; do rmmod imp2 && insmod /imp2.ko || exit 13; i=$((i+1)); done
kill %1 %2
uname -r > /share/uname`,
				Timeout: 6 * time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != 0 || len(res.Dmesg) != 0 {
				t.Fatalf("exit %d, dmesg %q; console:\n%s", res.ExitCode, res.Dmesg, res.ConsoleTail(30))
			}
			if b, err := os.ReadFile(filepath.Join(co.Share, "uname")); err != nil || strings.TrimSpace(string(b)) != m.Release {
				t.Errorf("guest uname -r = %q, %v; want %s", b, err, m.Release)
			}
			t.Logf("%s: boot to result %.1f s", k.Label(), res.Elapsed.Seconds())
		})
	}
}
