package bench

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/vm"
)

// modinfo reads the .modinfo fields of a module file (what modinfo(8)
// prints), without needing the kmod tools.
func modinfo(t *testing.T, ko string) map[string]string {
	t.Helper()
	f, err := elf.Open(ko)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		t.Fatalf("%s: no .modinfo", ko)
	}
	b, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	info := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			info[k] = v
		}
	}
	return info
}

// TestGateVariantBuild: a test variant says what it is in its modinfo
// and version string; the default build has no trace of it, and a bad
// delay is refused by kmod/Makefile naming the variable.
func TestGateVariantBuild(t *testing.T) {
	root, err := vm.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	k, err := vm.FindKernel()
	if err != nil {
		t.Skip(err)
	}
	tmp := t.TempDir()
	variant, plain := filepath.Join(tmp, "v.ko"), filepath.Join(tmp, "p.ko")
	if err := buildCandidate(root, k, 12345, tmp, variant); err != nil {
		t.Fatal(err)
	}
	if err := buildCandidate(root, k, 0, tmp, plain); err != nil {
		t.Fatal(err)
	}
	v, p := modinfo(t, variant), modinfo(t, plain)
	if v["test_delay_ns"] != "12345" || !strings.HasSuffix(v["version"], "-test-delay-12345ns") {
		t.Errorf("variant: test_delay_ns %q, version %q", v["test_delay_ns"], v["version"])
	}
	if _, ok := p["test_delay_ns"]; ok || strings.Contains(p["version"], "test") || p["version"] == "" {
		t.Errorf("default build: %v", p)
	}
	if b, _ := os.ReadFile(plain); bytes.Contains(b, []byte("test-delay")) || bytes.Contains(b, []byte("__const_udelay")) {
		t.Error("the default build contains the test delay")
	}
	out, err := exec.Command("make", "-s", "-C", filepath.Join(root, "kmod"), "IMP2_TEST_DELAY_NS=10us").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "IMP2_TEST_DELAY_NS=10us: want a whole number of nanoseconds") {
		t.Errorf("a bad delay: %v\n%s", err, out)
	}
}

// TestProbeConsumer: the host's check of a base revision's binary accepts
// this checkout's imp2-bench and refuses, by what is missing, a binary
// without the gate-consumer command and one that speaks another protocol.
func TestProbeConsumer(t *testing.T) {
	root, err := vm.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "imp2-bench")
	if err := vm.BuildGo(root, "./cmd/bench", bin, false); err != nil {
		t.Fatal(err)
	}
	if err := probeConsumer(bin); err != nil {
		t.Errorf("this checkout's imp2-bench: %v", err)
	}
	if err := probeConsumer("/bin/false"); err == nil || !strings.Contains(err.Error(), "has no "+GateConsumerCommand+" command") {
		t.Errorf("a binary without the command: %v", err)
	}
	if err := probeConsumer("/bin/echo"); err == nil || !strings.Contains(err.Error(), `speaks "`+GateConsumerCommand+` -protocol"`) {
		t.Errorf("a binary speaking another protocol: %v", err)
	}
}

// TestGateBaseBuild: the base revision's consumer is built from its own
// tree and passes the protocol check; -module-only builds none; a
// revision from before the gate's consumer is refused, naming what it
// lacks and the flag that compares the modules only.
func TestGateBaseBuild(t *testing.T) {
	root, err := vm.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	k, err := vm.FindKernel()
	if err != nil {
		t.Skip(err)
	}
	b, err := gateBuildBase(root, k, GateABOptions{Base: "HEAD"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b.bin == "" || !strings.HasPrefix(b.label, "HEAD (") {
		t.Errorf("base HEAD: consumer %q, label %q", b.bin, b.label)
	}
	if b, err = gateBuildBase(root, k, GateABOptions{Base: "HEAD", ModuleOnly: true}, t.TempDir()); err != nil || b.bin != "" || !strings.Contains(b.label, "module only") {
		t.Errorf("module only: %+v, %v", b, err)
	}
	added, err := exec.Command("git", "-C", root, "log", "-1", "--format=%H", "--diff-filter=A", "--", "bench/gateconsumer_linux.go").Output()
	if err != nil || len(added) == 0 {
		t.Skipf("no commit adding the gate's consumer in this history: %v", err)
	}
	before := strings.TrimSpace(string(added)) + "^"
	_, err = gateBuildBase(root, k, GateABOptions{Base: before}, t.TempDir())
	if !errors.Is(err, compare.ErrUnusable) || !strings.Contains(err.Error(), "predates the gate's consumer") || !strings.Contains(err.Error(), "-module-only") || !strings.Contains(err.Error(), before) {
		t.Errorf("a base from before the consumer: %v", err)
	}
}
