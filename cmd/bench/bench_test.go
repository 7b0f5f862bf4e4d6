package main

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/pcapnl"
)

// sweepArgs is a short sweep with one step that must drop: a consumer
// spending 400 µs per event behind an 8 KiB buffer at 4000 pps.
func sweepArgs(source, out string) []string {
	return []string{"run", "-source", source, "-rates", "500,4000", "-rcvbufs", "212992,8K",
		"-delays", "0,400us", "-duration", "400ms", "-reps", "2", "-trace-frames", "300", "-out", out}
}

func runBench(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if code := run(args, &o, &e); code != exitOK {
		t.Fatalf("imp2-bench %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), e.String())
	}
	return o.String(), e.String()
}

// checkRunDir asserts what every result directory must hold.
func checkRunDir(t *testing.T, dir, kind string, kernelDrops bool) *results.Run {
	t.Helper()
	run, err := results.Read(filepath.Join(dir, bench.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if run.Source.Kind != kind || len(run.Steps) != 8 {
		t.Fatalf("source %q with %d steps, want %s with 8", run.Source.Kind, len(run.Steps), kind)
	}
	if run.Environment.Build != cli.Version() || run.Environment.Build == "" {
		t.Errorf("environment.build %q; want the -version string %q", run.Environment.Build, cli.Version())
	}
	sawDrops := false
	for _, st := range run.Steps {
		if len(st.Samples) != 2 {
			t.Fatalf("step %s: %d samples, want 2", st.Key(), len(st.Samples))
		}
		for _, s := range st.Samples {
			if s.Unicast == nil || s.Unicast.Count == 0 || s.EndToEnd == nil || s.EndToEnd.Count == 0 {
				t.Errorf("step %s: empty latency histograms", st.Key())
			}
			if s.BurstHeld == nil || *s.BurstHeld <= 0 {
				t.Errorf("step %s: no burst probe", st.Key())
			}
			if !s.Drops.Agree {
				t.Errorf("step %s rep %d: drop accountings disagree: %s", st.Key(), s.Rep, s.Drops.Disagreement)
			}
			if (s.Drops.MeminfoDrops != nil) != kernelDrops {
				t.Errorf("step %s: meminfo drops present = %v, want %v", st.Key(), s.Drops.MeminfoDrops != nil, kernelDrops)
			}
			if s.Dropped() > 0 {
				sawDrops = true
				if s.Received+s.Dropped() != s.Sent {
					t.Errorf("step %s: received %d + dropped %d != sent %d", st.Key(), s.Received, s.Dropped(), s.Sent)
				}
			}
		}
	}
	if !sawDrops {
		t.Error("no step dropped events: the slow consumer behind 8 KiB should have")
	}
	if run.Overhead == nil || run.Overhead.With <= 0 || run.Overhead.Without <= 0 {
		t.Errorf("overhead not measured: %+v", run.Overhead)
	}
	if b, err := os.ReadFile(filepath.Join(dir, bench.BenchFile)); err != nil || !bytes.Contains(b, []byte("BenchmarkImp2/")) {
		t.Errorf("%s: %v, or no benchmark lines", bench.BenchFile, err)
	}
	checkPlots(t, filepath.Join(dir, bench.PlotsDir))
	return run
}

func checkPlots(t *testing.T, dir string) {
	t.Helper()
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	svgs, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	if len(pngs) < 5 || len(svgs) != len(pngs) {
		t.Fatalf("%d PNG and %d SVG plots, want 5 or more of each", len(pngs), len(svgs))
	}
	for _, p := range pngs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 300 {
			t.Errorf("%s: not a usable PNG: %v", p, err)
		}
	}
	for _, p := range svgs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ XMLName xml.Name }
		if err := xml.Unmarshal(b, &doc); err != nil || doc.XMLName.Local != "svg" {
			t.Errorf("%s: not an SVG document: %v (root %q)", p, err, doc.XMLName.Local)
		}
	}
}

func TestRunEmu(t *testing.T) {
	dir := t.TempDir()
	out, _ := runBench(t, sweepArgs("emu", dir)...)
	checkRunDir(t, dir, results.SourceEmu, false)
	if !strings.Contains(out, "EMULATION") {
		t.Errorf("summary does not label the emulation:\n%s", out)
	}
	// The sample trace is in the format its name asks for (zstd pcapng).
	f, err := os.Open(filepath.Join(dir, bench.TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapnl.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if _, err := rd.Next(); err != nil || rd.Compression() != "zstd" || rd.Format() != "pcapng" {
		t.Errorf("%s: %v, %s %s; want a zstd pcapng with frames", bench.TraceFile, err, rd.Compression(), rd.Format())
	}
}

// TestRunEmuForce: an -out that holds an earlier run is refused before
// the sweep (exit 2, naming it and -force); -force overwrites it, and a
// sweep of fewer reps than compare needs says so first.
func TestRunEmuForce(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(shards[0], bench.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bench.ResultsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "-source", "emu", "-rates", "500", "-rcvbufs", "212992", "-duration", "100ms", "-reps", "1",
		"-overhead=false", "-plot=false", "-trace-frames", "0", "-out", dir}
	var o, e bytes.Buffer
	want := "imp2-bench run: -out " + dir + ": holds the results.json of an earlier run (-force overwrites it)\n"
	if code := run(args, &o, &e); code != exitUsage || !strings.HasSuffix(e.String(), want) || o.Len() > 0 {
		t.Errorf("run into an earlier run's directory: exit %d, stdout %q, stderr %q; want exit 2 and %q", code, o.String(), e.String(), want)
	}
	if now, err := os.ReadFile(filepath.Join(dir, bench.ResultsFile)); err != nil || !bytes.Equal(now, b) {
		t.Errorf("the earlier run's results were touched: %v", err)
	}
	_, stderr := runBench(t, append(args, "-force")...)
	if run, err := results.Read(filepath.Join(dir, bench.ResultsFile)); err != nil || run.Source.Kind != results.SourceEmu || len(run.Steps) != 1 {
		t.Errorf("-force: %v; want the new emu run of one step in %s", err, dir)
	}
	if n := strings.Count(stderr, "imp2-bench run: note: -reps 1: compare needs at least 6 samples per side"); n != 1 {
		t.Errorf("%d notes of too few reps, want 1:\n%s", n, stderr)
	}
}

func TestRunNFLOG(t *testing.T) {
	dir := t.TempDir()
	runBench(t, sweepArgs("nflog", dir)...)
	checkRunDir(t, dir, results.SourceNFLOG, true)
}

// TestRunKmodInVM runs the sweep with the real module in the VM harness.
func TestRunKmodInVM(t *testing.T) {
	dir := t.TempDir()
	args := append(sweepArgs("kmod", dir), "-vm")
	_, stderr := runBench(t, args...)
	run := checkRunDir(t, dir, results.SourceKmod, true)
	if !run.Environment.InVM {
		t.Error("results do not say they come from the VM")
	}
	for _, st := range run.Steps {
		for _, s := range st.Samples {
			if s.Drops.ModuleEAGAIN == nil || s.Drops.ENOBUFS == nil {
				t.Fatalf("step %s: module EAGAIN or ENOBUFS accounting missing", st.Key())
			}
		}
	}
	if !strings.Contains(stderr, "rep 2:") {
		t.Errorf("guest progress not relayed:\n%s", stderr)
	}
}

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-rates", "1000,x"}, `flag -rates: "x"`},
		{[]string{"run", "-rcvbufs", "1K"}, "-rcvbufs 1024"},
		{[]string{"run", "-delays", "fast"}, `flag -delays: "fast"`},
		{[]string{"run", "-delays", "0,1h"}, "-delays 1h0m0s: at most 1s of busy work per event"},
		{[]string{"run", "-source", "ebpf"}, `-source "ebpf"`},
		{[]string{"run", "-source", "emu", "-vm"}, "-vm runs kmod or nflog"},
		{[]string{"run", "-kernel", "7.3"}, "-kernel 7.3: only a sweep in the VM boots another kernel"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		var o, e bytes.Buffer
		if code := run(c.args, &o, &e); code != exitUsage || !strings.Contains(e.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming %q", c.args, code, e.String(), exitUsage, c.want)
		}
	}
}

func namespaces(prefix string) []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func waitFor(cond func() bool) bool {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
