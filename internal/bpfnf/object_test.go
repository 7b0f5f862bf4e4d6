package bpfnf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// pinnedClang is the clang major version the committed object was built
// with (Debian 12's clang 14, what scripts/deps.sh installs). Another
// version compiles the same source to other instructions, so the
// comparison means something only with this one.
const pinnedClang = "14"

// TestObjectIsRebuilt compiles imp2.bpf.c again with gen.go's own bpf2go
// command line, into a temporary folder, and checks that the committed
// object is byte for byte what comes out: clang with the same flags is
// reproducible (bpf2go strips DWARF; the BTF names the source by a
// relative path). Without clang, or with another version, it skips.
func TestObjectIsRebuilt(t *testing.T) {
	out, err := exec.Command("clang", "--version").Output()
	if err != nil {
		t.Skip("no clang on PATH (scripts/deps.sh installs it)")
	}
	if m := regexp.MustCompile(`clang version (\d+)\.`).FindSubmatch(out); m == nil || string(m[1]) != pinnedClang {
		t.Skipf("clang %q is not the pinned clang %s the object was built with", firstLine(out), pinnedClang)
	}
	args := generateArgs(t)
	dir := t.TempDir()
	args = append([]string{"-output-dir", dir}, args...)
	cmd := exec.Command("go", append([]string{"run", "github.com/cilium/ebpf/cmd/bpf2go"}, args...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpfnf")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	for _, name := range []string{"imp2_bpfel.o", "imp2_bpfel.go"} {
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		rebuilt, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, rebuilt) {
			t.Errorf("%s is not what imp2.bpf.c compiles to: run go generate ./internal/bpfnf and commit it (%s)", name, sameInstructions(t, name, filepath.Join(dir, name)))
		}
	}
}

// generateArgs returns bpf2go's arguments from gen.go's go:generate line,
// so the test builds exactly as go generate does.
func generateArgs(t *testing.T) []string {
	b, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "//go:generate go run github.com/cilium/ebpf/cmd/bpf2go "
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("gen.go has no line starting %q", prefix)
	return nil
}

// sameInstructions says whether the difference is in the programs'
// instructions or only around them, for the failure message.
func sameInstructions(t *testing.T, a, b string) string {
	if !strings.HasSuffix(a, ".o") {
		return "generated Go code differs"
	}
	insns := func(path string) string {
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil {
			t.Fatal(err)
		}
		var s strings.Builder
		for name, p := range spec.Programs {
			s.WriteString(name + "\n" + p.Instructions.String())
		}
		return s.String()
	}
	if insns(a) == insns(b) {
		return "same instructions, other metadata"
	}
	return "the instructions differ"
}

func firstLine(b []byte) string {
	l, _, _ := strings.Cut(string(b), "\n")
	return l
}
