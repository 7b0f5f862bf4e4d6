package main

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// testdata/gate holds real runs of the gate's sweep (kmod in the VM,
// Makefile GATE_SWEEP) on the shared 2-core development machine, queue
// traces cut to their peak: base.json is the committed baseline's run,
// noise-*.json.gz repeated runs of the same configuration (some with a
// busy loop competing with qemu, for a slower machine), slow-*.json.gz
// runs with a consumer delay, relabelled to delay 0 by relabel.

func readGz(t *testing.T, path string) *results.Run {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	r, err := results.Decode(z, path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(path, "slow-") {
		for i := range r.Steps {
			r.Steps[i].ConsumerDelay = 0
		}
		r.Params.ConsumerDelays = []time.Duration{0}
	}
	return r
}

func gateConfig(t *testing.T) compare.Config {
	t.Helper()
	o := bench.CompareOptions{Config: filepath.Join("..", "..", "results", "ci-baseline", bench.GateConfigFile)}
	cfg, err := o.Load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestGateNoFalseAlarms compares every pair of the real noise runs (both
// ways) under the gate's committed thresholds: none may alarm.
func TestGateNoFalseAlarms(t *testing.T) {
	cfg := gateConfig(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "gate", "noise-*.json.gz"))
	if len(files) < 15 {
		t.Fatalf("%d noise runs in testdata/gate", len(files))
	}
	runs := make([]*results.Run, len(files))
	for i, f := range files {
		runs[i] = readGz(t, f)
	}
	n, alarms := 0, 0
	for i := range runs {
		for j := range runs {
			if i == j {
				continue
			}
			v, err := compare.Compare(runs[i], runs[j], files[i], files[j], cfg)
			code, reason := compare.ExitStatus(v, err)
			n++
			if code != compare.ExitOK {
				alarms++
				t.Errorf("%s vs %s: exit %d: %s", files[i], files[j], code, reason)
			}
		}
	}
	t.Logf("%d comparisons of %d real runs of one configuration, %d alarms", n, len(runs), alarms)
}

// TestGateDetects: runs whose consumer spends 4 ms per event (half the
// events lost at 500/s into 16 KiB) must fail the gate on drop-ratio, and
// an exact count that moves (another event size) must fail it too.
func TestGateDetects(t *testing.T) {
	cfg := gateConfig(t)
	base, err := results.Read(filepath.Join("testdata", "gate", "base.json"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "gate", "slow-4ms-*.json.gz"))
	if len(files) == 0 {
		t.Fatal("no slow runs in testdata/gate")
	}
	for _, f := range files {
		v, err := compare.Compare(base, readGz(t, f), "base", f, cfg)
		code, reason := compare.ExitStatus(v, err)
		var reg []string
		for _, r := range v.Regressions() {
			reg = append(reg, r.Metric+"@"+r.Step)
		}
		if code != compare.ExitRegression || !slices.Contains(reg, "drop-ratio@rate=500/rcvbuf=16384/delay=0") {
			t.Errorf("%s: exit %d (%s), regressions %v; want drop-ratio at 16 KiB", f, code, reason, reg)
		}
	}
	fewer := readGz(t, filepath.Join("testdata", "gate", "noise-r01.json.gz"))
	for i := range fewer.Steps {
		for j := range fewer.Steps[i].Samples {
			*fewer.Steps[i].Samples[j].BurstHeld--
		}
	}
	v, err := compare.Compare(base, fewer, "base", "fewer", cfg)
	if code, reason := compare.ExitStatus(v, err); code != compare.ExitRegression || !strings.Contains(reason, "burst-held") {
		t.Errorf("burst-held one lower: exit %d: %s", code, reason)
	}
	// On another kernel the exact counts are left out, with a note.
	fewer.Environment.KernelRelease = "6.1.0-99-amd64"
	note := bench.ExactOnSameKernel(base, fewer)
	v, err = compare.Compare(base, fewer, "base", "other kernel", cfg)
	if code, reason := compare.ExitStatus(v, err); code != compare.ExitOK || !strings.Contains(note, "not compared: the baseline ran on kernel 6.1.0-56-amd64, this run on 6.1.0-99-amd64") {
		t.Errorf("other kernel: exit %d: %s; note %q", code, reason, note)
	}
}

// TestGateRepeatsMakefileSweep: the gate repeats the baseline's sweep,
// which `make baseline` ran with GATE_SWEEP.
func TestGateRepeatsMakefileSweep(t *testing.T) {
	base, err := results.Read(filepath.Join("..", "..", "results", "ci-baseline"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, line, ok := strings.Cut(string(mk), "\nGATE_SWEEP := ")
	if !ok {
		t.Fatal("Makefile: no GATE_SWEEP")
	}
	line, _, _ = strings.Cut(line, "\n")
	want, code, ok := parseRun(append(strings.Fields(line), "-out", "x", "-plot=false", "-overhead=false", "-trace-frames", "0"), os.Stdout, os.Stderr)
	if !ok {
		t.Fatalf("GATE_SWEEP %q: exit %d", line, code)
	}
	want.Progress, want.Build = nil, "" // the gate names its own build
	if got := bench.Repeat(base, "x"); !reflect.DeepEqual(got, *want) {
		type fields bench.Options // without String
		t.Errorf("the gate repeats\n  %+v\nwant (Makefile GATE_SWEEP)\n  %+v", fields(got), fields(*want))
	}
}

func TestGateUnusableBaseline(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, bench.ResultsFile), []byte(`{"schema_version": "2.0"}`), 0o644)
	var o, e strings.Builder
	code := run([]string{"gate", "-baseline", dir}, &o, &e)
	if code != 2 || !strings.Contains(e.String(), "exit 2: unusable input: ") || !strings.Contains(e.String(), "schema_version") {
		t.Errorf("exit %d: %s", code, e.String())
	}
}
