package bench

// The gate's builds on the host: each side's module and the imp2-bench
// binary whose consumer drains that side's floods (GateConsumer), the
// base's both from its revision, the candidates' from the working tree.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/vm"
)

// guestBench is the candidate's imp2-bench in the guest: the harness, and
// the candidates' consumer.
const guestBench = "/imp2-bench"

// gateBuilds builds the base (o.Base, or the merge-base with main) and
// every candidate into tmp, names them in res.Labels, fills job's
// Modules and Consumers and returns the guest files.
func gateBuilds(root string, k vm.Kernel, o GateABOptions, tmp string, res *GateABResult, job *gateJob) ([]vm.File, error) {
	bin := filepath.Join(tmp, "imp2-bench")
	if err := vm.BuildGo(root, "./cmd/bench", bin, false); err != nil {
		return nil, err
	}
	files := []vm.File{{Guest: guestBench, Host: bin}}
	base, err := gateBuildBase(root, k, o, tmp)
	if err != nil {
		return nil, err
	}
	res.Labels = []string{"base " + base.label}
	files = append(files, vm.File{Guest: "/m0.ko", Host: base.ko, Mode: 0o644})
	job.Modules, job.Consumers = []string{"/m0.ko"}, []string{guestBench}
	if base.bin != "" {
		files = append(files, vm.File{Guest: "/c0-imp2-bench", Host: base.bin})
		job.Consumers[0] = "/c0-imp2-bench"
	}
	for i, c := range o.Candidates {
		ko := filepath.Join(tmp, fmt.Sprintf("m%d.ko", i+1))
		if err := buildCandidate(root, k, c.DelayNS, tmp, ko); err != nil {
			return nil, err
		}
		res.Labels = append(res.Labels, c.label())
		files = append(files, vm.File{Guest: fmt.Sprintf("/m%d.ko", i+1), Host: ko, Mode: 0o644})
		job.Modules = append(job.Modules, fmt.Sprintf("/m%d.ko", i+1))
		consumer := guestBench
		if c.ConsumerDelayNS > 0 {
			consumer = fmt.Sprintf("/c%d-imp2-bench", i+1)
			host := filepath.Join(tmp, consumer[1:])
			if err := buildDelayedConsumer(root, c.ConsumerDelayNS, host); err != nil {
				return nil, err
			}
			files = append(files, vm.File{Guest: consumer, Host: host})
		}
		job.Consumers = append(job.Consumers, consumer)
	}
	return files, nil
}

// gateBase is the base side's build: its label, module and consumer
// binary ("" when the base has none: a .ko file, or o.ModuleOnly).
type gateBase struct {
	label, ko, bin string
}

// gateBuildBase builds the base revision's module and, unless
// o.ModuleOnly, its imp2-bench for the consumer, refusing a revision
// whose binary does not speak GateConsumerProtocol (compare.ErrUnusable:
// the gate exits 2, no verdict). A .ko file base has
// no consumer of its own: the candidates' drains its floods too.
func gateBuildBase(root string, k vm.Kernel, o GateABOptions, tmp string) (*gateBase, error) {
	b := &gateBase{ko: filepath.Join(tmp, "m0.ko")}
	ref := o.Base
	if strings.HasSuffix(ref, ".ko") {
		var err error
		b.label, err = buildBase(root, k, ref, tmp, b.ko)
		b.label += ", consumer: this checkout's"
		return b, err
	}
	if ref == "" {
		var err error
		if ref, err = mergeBase(root); err != nil {
			return nil, err
		}
	}
	label, rev, err := resolveRevision(root, ref)
	if err != nil {
		return nil, err
	}
	b.label = label
	if o.Base == "" {
		b.label = "merge-base with main (" + rev + ")"
	}
	src := filepath.Join(tmp, "base-src")
	if err := exportRevision(root, ref, rev, src); err != nil {
		return nil, err
	}
	ko, err := vm.BuildModule(src, k)
	if err != nil {
		return nil, err
	}
	if err := copyFile(ko, b.ko); err != nil {
		return nil, err
	}
	if o.ModuleOnly {
		b.label += ", module only (consumer: this checkout's)"
		return b, nil
	}
	b.bin = filepath.Join(tmp, "c0-imp2-bench")
	if err := vm.BuildGo(src, "./cmd/bench", b.bin, false); err != nil {
		return nil, fmt.Errorf("building the consumer of base %s: %w", label, err)
	}
	if err := probeConsumer(b.bin); err != nil {
		return nil, fmt.Errorf("%w: base %s: %v, so its consumer cannot drain the base's floods; merge main (or name a newer -base), or compare the modules only, with this checkout's consumer on both sides (-module-only)", compare.ErrUnusable, b.label, err)
	}
	return b, nil
}

// probeConsumer asks bin (a static guest binary, runnable here) which
// consumer protocol it speaks: it must be GateConsumerProtocol.
func probeConsumer(bin string) error {
	out, err := exec.Command(bin, GateConsumerCommand, "-protocol").CombinedOutput()
	got := strings.TrimSpace(string(out))
	switch {
	case err != nil:
		return fmt.Errorf("the revision predates the gate's consumer: its imp2-bench has no %s command (%v: %q)", GateConsumerCommand, err, firstLine(got))
	case got != GateConsumerProtocol:
		return fmt.Errorf("its imp2-bench %s speaks %q, this gate %q", GateConsumerCommand, got, GateConsumerProtocol)
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// buildDelayedConsumer builds the working tree's imp2-bench as a test
// variant whose gate consumer busy-waits delayNS per event (gatedelay.go).
func buildDelayedConsumer(root string, delayNS int, dst string) error {
	return vm.BuildGoFlags(root, "./cmd/bench", dst, "-tags", "imp2_test_consumer_delay",
		"-ldflags", "-X github.com/imp2/imp2/bench.consumerTestDelayNS="+strconv.Itoa(delayNS))
}

// mergeBase is the merge-base of HEAD with main (or origin/main): on a
// clean clone of main, HEAD itself.
func mergeBase(root string) (string, error) {
	for _, ref := range []string{"main", "origin/main"} {
		out, err := exec.Command("git", "-C", root, "merge-base", "HEAD", ref).Output()
		if err == nil {
			return strings.TrimSpace(string(out)), nil
		}
	}
	return "", fmt.Errorf("gate: %s has no branch main or origin/main to take the base revision from; name one with -base REF", root)
}

// buildCandidate builds the working tree's kmod/ in a copy of its own
// (so that a variant never leaves its imp2.ko in kmod/), with the test
// delay when delayNS > 0.
func buildCandidate(root string, k vm.Kernel, delayNS int, tmp, dst string) error {
	src, err := os.MkdirTemp(tmp, "cand-")
	if err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "kmod"), src).CombinedOutput(); err != nil {
		return fmt.Errorf("copying kmod/: %v: %s", err, out)
	}
	// A copy of built objects would be reused as they are: build afresh.
	if out, err := exec.Command("make", "-s", "-C", filepath.Join(src, "kmod"), "clean").CombinedOutput(); err != nil {
		return fmt.Errorf("make clean in the copy of kmod/: %v: %s", err, out)
	}
	var vars []string
	if delayNS > 0 {
		vars = append(vars, "IMP2_TEST_DELAY_NS="+strconv.Itoa(delayNS))
	}
	ko, err := vm.BuildModule(src, k, vars...)
	if err != nil {
		return err
	}
	return copyFile(ko, dst)
}
