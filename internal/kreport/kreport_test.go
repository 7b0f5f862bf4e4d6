package kreport

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/results"
)

// testdata/shards holds two real shards, made by
//
//	imp2-bench run -vm -kernel K -rates 500 -rcvbufs 16K,212992 -reps 2 \
//	    -duration 200ms -plot=false -overhead=false -trace-frames 0 -out testdata/shards/K
//
// for K = 6.1 and 7.3 (results.json only).
var shardDirs = []string{filepath.Join("testdata", "shards", "6.1"), filepath.Join("testdata", "shards", "7.3")}

// The kernels' burst capacity is a fact of each kernel (README's kernel
// table): an event costs 6.1 about 768 bytes of receive buffer and 7.3
// about 960.
var wantHeld = map[string]map[int]int64{
	"6.1": {16384: 21, 212992: 277},
	"7.3": {16384: 17, 212992: 221},
}

func TestMergeRealShards(t *testing.T) {
	out := t.TempDir()
	rep, paths, err := Merge(shardDirs, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 4 {
		t.Errorf("wrote %v, want kernels.json, kernels.md, kernels.png, kernels.svg", paths)
	}
	if !rep.Emulation || !strings.Contains(rep.Note, "emulation") {
		t.Errorf("emulation %v, note %q: the shards ran in the VM", rep.Emulation, rep.Note)
	}

	// The JSON on disk is the report.
	data, err := os.ReadFile(filepath.Join(out, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%s: %v", JSONFile, err)
	}
	if got.Schema != Schema || len(got.Kernels) != 2 {
		t.Fatalf("schema %q, %d kernels; want %q and 2", got.Schema, len(got.Kernels), Schema)
	}
	for i, k := range got.Kernels {
		run, err := results.Read(shardDirs[i])
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(shardDirs[i])
		if k.Name != name || k.Release != run.Environment.KernelRelease || !k.InVM || k.Dir != shardDirs[i] {
			t.Errorf("kernel %d: %+v; want name %s, release %s, in VM, dir %s", i, k, name, run.Environment.KernelRelease, shardDirs[i])
		}
		if len(k.Burst) != 2 {
			t.Fatalf("kernel %s: burst %+v, want the two receive buffers", k.Name, k.Burst)
		}
		for _, b := range k.Burst {
			if w := wantHeld[name][b.RcvBuf]; b.HeldMin != w || b.HeldMax != w {
				t.Errorf("kernel %s at %d bytes: held %d–%d, want %d", k.Name, b.RcvBuf, b.HeldMin, b.HeldMax, w)
			}
			if b.BufferBytes != b.RcvBuf {
				t.Errorf("kernel %s at %d bytes: buffer %d bytes, want the socket's effective receive buffer", k.Name, b.RcvBuf, b.BufferBytes)
			}
			if want := float64(b.RcvBuf) / float64(b.HeldMax); b.BytesPerEvent != want {
				t.Errorf("kernel %s at %d bytes: %v bytes per event, want %v", k.Name, b.RcvBuf, b.BytesPerEvent, want)
			}
			if want := float64(b.HeldMax) * (1 << 20) / float64(b.RcvBuf); b.HeldPerMiB != want {
				t.Errorf("kernel %s at %d bytes: %v held per MiB, want %v", k.Name, b.RcvBuf, b.HeldPerMiB, want)
			}
		}
	}
	// Truesize differs between the kernels: the report shows it.
	if a, b := got.Kernels[0].Burst[1].BytesPerEvent, got.Kernels[1].Burst[1].BytesPerEvent; !(a < 800 && b > 900) {
		t.Errorf("bytes per event at 208 KiB: 6.1 %v, 7.3 %v; want ≈768 and ≈960", a, b)
	}

	// One row per step, one cell per kernel, each the medians and merged
	// histograms of that kernel's samples.
	if len(got.Rows) != 2 {
		t.Fatalf("%d rows, want the 2 steps", len(got.Rows))
	}
	for _, r := range got.Rows {
		for i, c := range r.Cells {
			run, _ := results.Read(shardDirs[i])
			var st *results.Step
			for j := range run.Steps {
				if run.Steps[j].Key() == (results.StepKey{RatePPS: r.RatePPS, RcvBuf: r.RcvBuf, ConsumerDelay: r.ConsumerDelay}) {
					st = &run.Steps[j]
				}
			}
			if c == nil || st == nil {
				t.Fatalf("row %d/%d kernel %d: cell %v, step %v", r.RatePPS, r.RcvBuf, i, c, st)
			}
			s0, s1 := st.Samples[0], st.Samples[1]
			var dropped int64
			for _, s := range st.Samples {
				dropped += s.Dropped()
			}
			if c.Samples != 2 || c.AchievedPPS != (s0.AchievedPPS+s1.AchievedPPS)/2 || c.Dropped != dropped {
				t.Errorf("row %d/%d kernel %d: %+v; want 2 samples, achieved %v, dropped %d", r.RatePPS, r.RcvBuf, i, c, (s0.AchievedPPS+s1.AchievedPPS)/2, dropped)
			}
			if c.Unicast == nil || c.Unicast.Count != s0.Unicast.Count+s1.Unicast.Count {
				t.Errorf("row %d/%d kernel %d: unicast %+v, want the %d+%d events of both samples", r.RatePPS, r.RcvBuf, i, c.Unicast, s0.Unicast.Count, s1.Unicast.Count)
			} else if lo, hi := min(s0.Unicast.P50, s1.Unicast.P50), max(s0.Unicast.Max, s1.Unicast.Max); c.Unicast.P50 < lo || c.Unicast.Max != hi {
				t.Errorf("row %d/%d kernel %d: merged unicast %+v; want p50 ≥ %d and max %d", r.RatePPS, r.RcvBuf, i, c.Unicast, lo, hi)
			}
		}
	}

	md, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Cross-kernel report (emulation)", "| 6.1 | 6.1.0-57-amd64 | kmod |", "| 7.3 | 7.3.4+deb13-amd64 | kmod |",
		"| 6.1 | 21 | 277 |", "| 7.3 | 17 | 221 |", "| 500 | 16 KiB | 0 | 6.1 | 2 |", "| 500 | 208 KiB | 0 | 7.3 | 2 |"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", MarkdownFile, want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(out, "kernels.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"6.1", "7.3", "emulation", "Burst held", "Drop ratio", "Unicast latency"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("kernels.svg has no %q", want)
		}
	}
	if png, err := os.ReadFile(filepath.Join(out, "kernels.png")); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("kernels.png: %v, not a PNG", err)
	}
}

// A step one kernel lacks is an empty cell, not a failure: sweeps of
// different shards need not match.
func TestMergeStepMissingOnOneKernel(t *testing.T) {
	run, err := results.Read(shardDirs[1])
	if err != nil {
		t.Fatal(err)
	}
	run.Steps = run.Steps[:1]
	short := filepath.Join(t.TempDir(), "7.3")
	if err := os.Mkdir(short, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := results.Write(filepath.Join(short, results.FileName), run); err != nil {
		t.Fatal(err)
	}
	rep, _, err := Merge([]string{shardDirs[0], short}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	empty := 0
	for _, r := range rep.Rows {
		if r.Cells[0] == nil {
			t.Errorf("6.1 has every step; row %d/%d has no cell", r.RatePPS, r.RcvBuf)
		}
		if r.Cells[1] == nil {
			empty++
		}
	}
	if len(rep.Rows) != 2 || empty != 1 {
		t.Errorf("%d rows, %d empty 7.3 cells; want 2 rows and 1", len(rep.Rows), empty)
	}
}

// A bad shard stops the merge with an error naming it, and the report
// already in the output directory stays as it was.
func TestMergeRefusesBadShards(t *testing.T) {
	out := t.TempDir()
	if _, _, err := Merge(shardDirs, out); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}

	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, results.FileName), []byte(`{"schema_version":"1.1","steps":[`), 0o644); err != nil {
		t.Fatal(err)
	}
	noRelease := t.TempDir()
	run, err := results.Read(shardDirs[0])
	if err != nil {
		t.Fatal(err)
	}
	run.Environment.KernelRelease = ""
	if err := results.Write(filepath.Join(noRelease, results.FileName), run); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dirs []string
		want []string
	}{
		{nil, []string{"no result directories"}},
		{[]string{shardDirs[0], broken}, []string{"shard " + broken}},
		{[]string{shardDirs[0], filepath.Join(broken, "missing")}, []string{"shard " + filepath.Join(broken, "missing")}},
		{[]string{noRelease}, []string{"shard " + noRelease, "kernel_release is empty"}},
		{[]string{shardDirs[0], shardDirs[1], shardDirs[0]}, []string{shardDirs[0] + " and " + shardDirs[0], "6.1.0-57-amd64"}},
	} {
		_, _, err := Merge(c.dirs, out)
		if err == nil {
			t.Errorf("Merge(%q) succeeded", c.dirs)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Merge(%q): %v; want it to say %q", c.dirs, err, w)
			}
		}
	}
	after, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("a refused merge changed %s (%v)", MarkdownFile, err)
	}
}

// TestMergeSourcesOnOneKernel: shards of several sources on one kernel
// make one column per source, named by kernel and source; two shards of
// one source on one kernel are still refused.
func TestMergeSourcesOnOneKernel(t *testing.T) {
	run, err := results.Read(shardDirs[0])
	if err != nil {
		t.Fatal(err)
	}
	run.Source = results.Source{Kind: results.SourceBPF, Detail: "a copy of the kmod shard, relabelled"}
	// A ring is a power of two: the 208 KiB step's buffer is 256 KiB.
	for i := range run.Steps {
		for j := range run.Steps[i].Samples {
			if run.Steps[i].RcvBuf == 212992 {
				run.Steps[i].Samples[j].Queue.RcvBuf = 262144
			}
		}
	}
	other := t.TempDir()
	if err := results.Write(filepath.Join(other, results.FileName), run); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	rep, _, err := Merge([]string{shardDirs[0], other}, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Kernels) != 2 || rep.Kernels[0].Name != "6.1 kmod" || rep.Kernels[1].Name != "6.1 bpf" {
		t.Fatalf("columns %+v, want 6.1 kmod and 6.1 bpf", rep.Kernels)
	}
	if b := rep.Kernels[1].Burst[1]; b.RcvBuf != 212992 || b.BufferBytes != 262144 || b.BytesPerEvent != 262144.0/277 || b.HeldPerMiB != 277*4 {
		t.Errorf("burst at the 256 KiB ring: %+v, want 262144/277 bytes per event, 1108 per MiB", b)
	}
	md, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Sources side by side (emulation)", "| 6.1 bpf | 6.1.0-57-amd64 | bpf |", "| 500 | 16 KiB | 0 | 6.1 bpf | 2 |", "held per MiB"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", MarkdownFile, want, md)
		}
	}
	if _, _, err := Merge([]string{other, shardDirs[0], other}, out); err == nil || !strings.Contains(err.Error(), "both ran source bpf on kernel 6.1.0-57-amd64") {
		t.Errorf("two bpf shards of one kernel: %v", err)
	}
}

// TestMergeEmuIsEmulation: a shard of the user-space emulator (source
// emu, on the host) makes the report an emulation everywhere it speaks:
// kernels.json's "emulation", the Markdown's title and note, and the
// column's name (the figures' legends), as the README promises; a host
// shard of a real source beside it is not.
func TestMergeEmuIsEmulation(t *testing.T) {
	var dirs []string
	for _, src := range []results.Source{
		{Kind: results.SourceEmu, Emulated: true, Detail: "the 6.1 shard relabelled as a host emu run"},
		{Kind: results.SourceNFLOG, Detail: "the 6.1 shard relabelled as a host nflog run"},
	} {
		run, err := results.Read(shardDirs[0])
		if err != nil {
			t.Fatal(err)
		}
		run.Source, run.Environment.InVM, run.Environment.Hostname = src, false, "host"
		dir := filepath.Join(t.TempDir(), src.Kind)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := results.Write(filepath.Join(dir, results.FileName), run); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	out := t.TempDir()
	rep, _, err := Merge(dirs, out)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Emulation || !strings.Contains(rep.Note, "6.1 emu (emulation) ran the user-space emulator") {
		t.Errorf("emulation %v, note %q: want an emulation naming the emu column", rep.Emulation, rep.Note)
	}
	if k := rep.Kernels[0]; k.Name != "6.1 emu (emulation)" || !k.Emulated {
		t.Errorf("emu column %+v, want name \"6.1 emu (emulation)\", emulated", k)
	}
	if k := rep.Kernels[1]; k.Name != "6.1 nflog" || k.Emulated {
		t.Errorf("nflog column %+v, want name \"6.1 nflog\", not emulated", k)
	}
	js, err := os.ReadFile(filepath.Join(out, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte(`"emulation": true`)) {
		t.Errorf("%s lacks \"emulation\": true", JSONFile)
	}
	md, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Sources side by side (emulation)", "| 6.1 emu (emulation) | 6.1.0-57-amd64 | emu | host, 2 CPUs, user-space emulation |"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", MarkdownFile, want, md)
		}
	}
}
