package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/bpfnf"
	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/pcapnl"
)

// TestRunBPF runs the sweep with the BPF peer on this host, at both of
// its hooks where the kernel has them (internal/bpfvm covers Debian's
// kernels in the VM). Its trace holds the ring's records as imp2 frames.
func TestRunBPF(t *testing.T) {
	for _, c := range []struct {
		source string
		prog   ebpf.ProgramType
	}{{results.SourceBPF, ebpf.Netfilter}, {results.SourceBPFTC, ebpf.SchedCLS}} {
		t.Run(c.source, func(t *testing.T) {
			if err := features.HaveProgramType(c.prog); err != nil {
				t.Skipf("this host cannot load %v BPF programs: %v", c.prog, err)
			}
			runBPF(t, c.source)
		})
	}
}

func runBPF(t *testing.T, source string) {
	dir := t.TempDir()
	runBench(t, sweepArgs(source, dir)...)
	run := checkRunDir(t, dir, source, false)
	for _, st := range run.Steps {
		for _, s := range st.Samples {
			if s.Drops.ModuleEAGAIN == nil || s.Drops.SeqGaps == nil || *s.Drops.ModuleEAGAIN != *s.Drops.SeqGaps {
				t.Errorf("step %s: failed reservations %v, sequence gaps %v: want both, equal", st.Key(), s.Drops.ModuleEAGAIN, s.Drops.SeqGaps)
			}
			if want := int64(bpfnf.RingCapacity(int(s.Queue.RcvBuf))); *s.BurstHeld != want {
				t.Errorf("step %s: a %d-byte ring held %d records, want %d", st.Key(), s.Queue.RcvBuf, *s.BurstHeld, want)
			}
		}
	}
	f, err := os.Open(filepath.Join(dir, bench.TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapnl.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fr, err := r.Next()
	if err != nil || fr.Family != 31 || len(fr.Data) != 64 {
		t.Fatalf("first trace frame: %v, family %d, %d bytes; want an imp2 event of 64 bytes (with its queue extension)", err, fr.Family, len(fr.Data))
	}
}
