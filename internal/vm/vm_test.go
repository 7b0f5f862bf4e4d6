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

// requireVM fails the test (never skips it) when the VM cannot be started:
// the suite's set-up installs everything it needs.
func requireVM(t *testing.T) Kernel {
	t.Helper()
	if err := CheckHost(); err != nil {
		t.Fatal(err)
	}
	k, err := FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestResolveModulesOrdersDependenciesFirst(t *testing.T) {
	k := requireVM(t)
	got, err := k.resolveModules([]string{"9p", "nft_log", "veth"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, p := range got {
		name := moduleName(p)
		if _, dup := pos[name]; dup {
			t.Fatalf("%s listed twice in %v", name, got)
		}
		pos[name] = i
	}
	dep, err := os.ReadFile(filepath.Join(k.Modules, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	loadable := func(name string) bool {
		for _, l := range strings.Split(string(dep), "\n") {
			if p, _, ok := strings.Cut(l, ":"); ok && moduleName(p) == name {
				return true
			}
		}
		return false
	}
	for _, before := range [][2]string{{"9pnet", "9p"}, {"netfs", "9p"}, {"nfnetlink", "nf_tables"}, {"nf_tables", "nft_log"}, {"crc32c_generic", "libcrc32c"}} {
		// A later kernel (IMP2_KERNEL) may build one of them in (7.3:
		// nfnetlink) or lack one (7.3 has no libcrc32c).
		if !loadable(before[0]) || !loadable(before[1]) {
			continue
		}
		a, aok := pos[before[0]]
		b, bok := pos[before[1]]
		if !aok || !bok || a > b {
			t.Errorf("%s must load before %s: %v", before[0], before[1], got)
		}
	}
	if _, err := k.resolveModules([]string{"no_such_module"}); err == nil || !strings.Contains(err.Error(), "no_such_module") {
		t.Errorf("unknown module: err = %v, want one naming it", err)
	}
}

func TestInitramfsIsReadableByCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatal(&MissingError{What: "cpio", Package: "cpio"})
	}
	r := newInitramfs()
	r.addData("/etc/a/b.txt", []byte("hello"), 0o644)
	r.addSymlink("/bin/sh", "busybox")
	var buf bytes.Buffer
	if err := r.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-id", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/a/b.txt")); err != nil || string(b) != "hello" {
		t.Errorf("etc/a/b.txt = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
}

func TestBootRunsScriptWithModulesAndShare(t *testing.T) {
	requireVM(t)
	share := t.TempDir()
	var console bytes.Buffer
	res, err := Run(context.Background(), Config{
		KernelModules: []string{"veth"},
		HostBinaries:  []string{"ip"},
		ShareDir:      share,
		Script: `/usr/bin/ip link add va type veth peer name vb || exit 10
/usr/bin/ip -o link show vb | grep -q vb@va || exit 11
echo from-guest > /share/out.txt
echo guest says hi
exit 7`,
		Timeout: 3 * time.Minute,
		Console: &console,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot to result: %v", res.Elapsed)
	if res.ExitCode != 7 {
		t.Fatalf("exit code %d, want 7; console:\n%s", res.ExitCode, res.Console)
	}
	if !strings.Contains(string(res.Console), "guest says hi") {
		t.Errorf("console incomplete:\n%s", res.Console)
	}
	streamed := console.String()
	if !strings.Contains(streamed, "\nguest says hi\n") || strings.ContainsAny(streamed, "\r\x1b") {
		t.Errorf("streamed console is not clean lines:\n%q", streamed)
	}
	if b, err := os.ReadFile(filepath.Join(share, "out.txt")); err != nil || string(b) != "from-guest\n" {
		t.Errorf("share out.txt = %q, %v", b, err)
	}
	if len(res.Dmesg) != 0 {
		t.Errorf("dmesg problems: %q", res.Dmesg)
	}
}

func TestTimeoutKillsQemu(t *testing.T) {
	requireVM(t)
	share := t.TempDir() // names this test's qemu in the process list
	start := time.Now()
	_, err := Run(context.Background(), Config{
		Script:   "sleep 600",
		ShareDir: share,
		Timeout:  20 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if el := time.Since(start); el > 35*time.Second {
		t.Errorf("Run returned after %v, long past its 20s timeout", el)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("qemu")) && bytes.Contains(b, []byte(share)) {
			t.Errorf("qemu still running (%s) after the timeout", p)
		}
	}
}

// TestConsoleSplitsAtTerminalReset feeds the console as SeaBIOS leaves it:
// the guest's first line follows the firmware's unterminated one after a
// reset. The marker on it must still count and the line stand alone.
func TestConsoleSplitsAtTerminalReset(t *testing.T) {
	raw := "\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1)\r\nBooting from ROM...\x1bc\x1b[?7l\x1b[2JIMP2-VM-EXIT 3\r\nIMP2-VM-DMESG WARNING: x\r\n"
	var out bytes.Buffer
	all, exit, dmesg := readConsole(strings.NewReader(raw), &out)
	if string(all) != raw || exit != 3 || len(dmesg) != 1 || dmesg[0] != "WARNING: x" {
		t.Errorf("raw kept %v, exit %d, dmesg %q; want the raw bytes, 3, [WARNING: x]", string(all) == raw, exit, dmesg)
	}
	want := "SeaBIOS (version 1)\nBooting from ROM...\nIMP2-VM-EXIT 3\nIMP2-VM-DMESG WARNING: x\n"
	if out.String() != want {
		t.Errorf("streamed %q, want %q", out.String(), want)
	}
}
