package results_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/perf/benchfmt"

	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/results/resultstest"
)

func synthetic(t *testing.T) *results.Run {
	t.Helper()
	o := resultstest.Default()
	o.Events = 2000
	return resultstest.Run(o)
}

func TestWriteReadRoundTrip(t *testing.T) {
	run := synthetic(t)
	if err := run.Validate(); err != nil {
		t.Fatalf("synthetic run invalid: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, results.FileName)
	if err := results.Write(path, run); err != nil {
		t.Fatal(err)
	}
	got, err := results.Read(dir) // a directory reads its results.json
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, run) {
		t.Error("run changed in a write/read round trip")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("results.json mode %v, err %v; want 0644", fi.Mode(), err)
	}
}

func TestValidationNamesFileAndField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(r *results.Run)
		want   string
	}{
		{"percentile", func(r *results.Run) { r.Steps[3].Samples[1].Unicast.P99 = 1 },
			"results.json: steps[3].samples[1].unicast_latency: summary"},
		{"hdr", func(r *results.Run) { r.Steps[0].Samples[0].EndToEnd.HDR = "not base64!" },
			"results.json: steps[0].samples[0].e2e_latency: hdr:"},
		{"delivery", func(r *results.Run) { r.Steps[2].Samples[5].DeliveryRatio = 0.5 },
			"results.json: steps[2].samples[5].delivery_ratio:"},
		{"agree", func(r *results.Run) { *r.Steps[7].Samples[0].Drops.SeqGaps += 3 },
			"results.json: steps[7].samples[0].drops.agree: recorded agree=true"},
		{"queue order", func(r *results.Run) { r.Steps[1].Samples[2].Queue.Samples[4].Offset = -1 },
			"results.json: steps[1].samples[2].queue.samples[4]:"},
		{"queue peak", func(r *results.Run) { r.Steps[3].Samples[2].Queue.PeakBytes = 0 },
			"results.json: steps[3].samples[2].queue.samples["},
		{"queue method", func(r *results.Run) { r.Steps[1].Samples[0].Queue.Method = "guessed" },
			"results.json: steps[1].samples[0].queue.method:"},
		{"queue gaps", func(r *results.Run) {
			q := &r.Steps[1].Samples[0].Queue
			q.Method, q.Gaps = results.QueueExact, []results.QueueGap{{From: 1, To: 2, Events: 1 + *r.Steps[1].Samples[0].Drops.SeqGaps}}
		}, "results.json: steps[1].samples[0].queue.gaps: hold"},
		{"rate", func(r *results.Run) { r.Steps[4].RatePPS = 7 },
			"results.json: steps[4].rate_pps: 7 is not in parameters.rates_pps"},
		{"duplicate", func(r *results.Run) { r.Steps[1] = r.Steps[0] },
			"results.json: steps[1]: same parameters as steps[0]"},
		{"rep", func(r *results.Run) { r.Steps[0].Samples[1].Rep = 0 },
			"results.json: steps[0].samples[1].rep:"},
		{"emulated", func(r *results.Run) { r.Source.Emulated = true },
			"results.json: source.emulated:"},
		{"kind", func(r *results.Run) { r.Source.Kind = "ebpf" },
			"results.json: source.kind:"},
		{"qthresh", func(r *results.Run) { r.Params.NFLOGQThreshold = 1 },
			"results.json: parameters.nflog_qthresh:"},
		{"no steps", func(r *results.Run) { r.Steps = nil }, "results.json: steps: empty"},
		{"overhead", func(r *results.Run) { r.Overhead.Unit = "" }, "results.json: consumer_overhead:"},
		{"overhead interval", func(r *results.Run) {
			r.Overhead.Pairs, r.Overhead.Confidence, r.Overhead.Diff, r.Overhead.DiffCI = 10, 0.95, 5, &[2]float64{1, 2}
		}, "results.json: consumer_overhead: pairs 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := synthetic(t)
			tc.break_(run)
			// Write refuses it too, so encode by hand.
			if err := results.Write(filepath.Join(t.TempDir(), "x.json"), run); err == nil {
				t.Fatal("Write accepted an invalid run")
			}
			data, err := json.Marshal(run)
			if err != nil {
				t.Fatal(err)
			}
			_, err = results.Decode(bytes.NewReader(data), "results.json")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant prefix %q", err, tc.want)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"schema_version":"2.0","steps":{"new":"shape"}}`, "x.json: schema_version: 2.0 is newer than this imp2-bench reads (1.x)"},
		{`{"schema_version":"0.9"}`, "x.json: schema_version: 0.9 is an unknown old major"},
		{`{"schema_version":"one"}`, `x.json: schema_version: "one" is not a major.minor`},
		{`{"steps":[]}`, "x.json: schema_version: missing"},
		{`[1,2]`, "x.json: not an imp2-bench results file (JSON: json: cannot unmarshal"},
		{"garbage", "x.json: not an imp2-bench results file (JSON: invalid character 'g'"},
		{`{"schema_version":"1.0","steps":[{"rate_pps":"fast"}]}`, "x.json: steps.rate_pps: string where int is expected"},
	} {
		_, err := results.Decode(strings.NewReader(tc.json), "x.json")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v\nwant prefix %q", tc.json, err, tc.want)
		}
	}
}

func TestNewerMinorVersionIsRead(t *testing.T) {
	run := synthetic(t)
	run.SchemaVersion = "1.7"
	data, _ := json.Marshal(run)
	// A later minor version may add fields; this reader ignores them.
	data = bytes.Replace(data, []byte(`{"schema_version"`), []byte(`{"future_field":{"x":1},"schema_version"`), 1)
	if _, err := results.Decode(bytes.NewReader(data), "results.json"); err != nil {
		t.Fatal(err)
	}
}

func TestReconcile(t *testing.T) {
	p := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		d     results.Drops
		agree bool
		why   string
	}{
		{results.Drops{}, true, ""},
		{results.Drops{ModuleEAGAIN: p(5), MeminfoDrops: p(5), SeqGaps: p(5), ENOBUFS: p(2)}, true, ""},
		{results.Drops{ModuleEAGAIN: p(5), MeminfoDrops: p(5), SeqGaps: p(4)}, false, "module_eagain=5 but seq_gaps=4"},
		{results.Drops{MeminfoDrops: p(0), ENOBUFS: p(1)}, false, "enobufs=1 but meminfo_drops=0"},
		{results.Drops{SeqGaps: p(3), ENOBUFS: p(0)}, false, "enobufs=0 but seq_gaps=3"},
	} {
		tc.d.Reconcile()
		if tc.d.Agree != tc.agree || tc.d.Disagreement != tc.why {
			t.Errorf("%+v: agree=%v %q, want %v %q", tc.d, tc.d.Agree, tc.d.Disagreement, tc.agree, tc.why)
		}
	}
}

func TestDropRatio(t *testing.T) {
	p := func(v int64) *int64 { return &v }
	s := results.Sample{Received: 900, Drops: results.Drops{ModuleEAGAIN: p(80), SeqGaps: p(100)}}
	if got := s.DropRatio(); got != 0.1 {
		t.Errorf("DropRatio = %v, want 0.1 (largest count over received+dropped)", got)
	}
	if got := (&results.Sample{}).DropRatio(); got != 0 {
		t.Errorf("empty sample DropRatio = %v, want 0", got)
	}
}

func TestLatencyRoundTrip(t *testing.T) {
	h := hdrhistogram.New(1, 1e10, 3)
	for v := int64(1000); v <= 100000; v += 10 {
		_ = h.RecordValue(v)
	}
	l, err := results.NewLatency(h)
	if err != nil {
		t.Fatal(err)
	}
	if l.Count != h.TotalCount() || l.P99 != h.ValueAtQuantile(99) || l.Max != h.Max() {
		t.Errorf("summary %+v does not match histogram", l)
	}
	if len(l.HDR) > 2000 {
		t.Errorf("encoded histogram is %d bytes, want a compact form", len(l.HDR))
	}
	back, err := l.Histogram()
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equals(h) {
		t.Error("decoded histogram differs")
	}
}

func TestBenchfmtParsesBack(t *testing.T) {
	run := synthetic(t)
	var buf bytes.Buffer
	if err := results.WriteBenchfmt(&buf, run); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(&buf, "bench.txt")
	type key struct{ name, unit string }
	got := map[key][]float64{}
	better := map[string]string{}
	n := 0
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Fatal(rec)
		case *benchfmt.UnitMetadata:
			better[rec.OrigUnit] = rec.Value
		case *benchfmt.Result:
			n++
			if rec.GetConfig("source") != "" || rec.GetConfig("kernel") != "6.1.0-synthetic" || rec.Iters != 1 {
				t.Fatalf("config/iters not carried: %v %d", rec.Config, rec.Iters)
			}
			for _, v := range rec.Values {
				u, x := v.Unit, v.Value
				if v.OrigUnit != "" {
					u, x = v.OrigUnit, v.OrigValue
				}
				got[key{rec.Name.String(), u}] = append(got[key{rec.Name.String(), u}], x)
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, st := range run.Steps {
		want += len(st.Samples)
	}
	if n != want {
		t.Fatalf("%d result lines, want one per sample (%d)", n, want)
	}
	st := run.Steps[5]
	name := "Imp2/" + st.Key().String()
	if !strings.HasPrefix(name, "Imp2/rate=10000/rcvbuf=212992/delay=0") {
		t.Fatalf("step 5 is %s", name)
	}
	p99 := got[key{name, "p99-unicast-ns"}]
	if len(p99) != len(st.Samples) || p99[1] != float64(st.Samples[1].Unicast.P99) {
		t.Errorf("p99-unicast-ns for %s = %v, want sample values", name, p99)
	}
	if v := got[key{name, "drop-ratio"}]; len(v) != len(st.Samples) || v[0] != st.Samples[0].DropRatio() {
		t.Errorf("drop-ratio = %v", v)
	}
	if better["achieved-pps"] != "higher" || better["p99.9-e2e-ns"] != "lower" {
		t.Errorf("unit metadata %v", better)
	}
}

func TestFormatDelay(t *testing.T) {
	if got := results.FormatDelay(0); got != "0" {
		t.Errorf("FormatDelay(0) = %q", got)
	}
	if got := results.FormatDelay(20_000); got != "20us" {
		t.Errorf("FormatDelay(20µs) = %q, want ASCII 20us", got)
	}
}

func TestHostEnvironment(t *testing.T) {
	env := results.HostEnvironment(false)
	if env.CPUs < 1 || env.GoVersion != runtime.Version() {
		t.Errorf("%+v", env)
	}
	if runtime.GOOS == "linux" && (env.KernelRelease == "" || env.Machine == "") {
		t.Errorf("no kernel release or machine on linux: %+v", env)
	}
}

// partialRun is the synthetic sweep cut after 8 samples, as a run stopped
// by SIGINT during rep 3 (index 2) of its second step would be.
func partialRun(t *testing.T) *results.Run {
	t.Helper()
	run := synthetic(t)
	run.Steps[1].Samples = run.Steps[1].Samples[:2]
	for i := 2; i < len(run.Steps); i++ {
		run.Steps[i].Samples = nil
	}
	k := run.Steps[1].Key()
	run.Overhead = nil
	run.MarkPartial("SIGINT", &k, 2)
	return run
}

func TestPartialRunRoundTrip(t *testing.T) {
	run := partialRun(t)
	in := run.Interruption
	if !run.Partial || len(run.Steps) != 2 || in.CompletedSamples != 8 || in.PlannedSamples != 48 ||
		len(in.CompletedSteps) != 1 || in.CompletedSteps[0] != run.Steps[0].Key().String() ||
		in.InterruptedStep != run.Steps[1].Key().String() || in.InterruptedRep != 2 {
		t.Fatalf("MarkPartial made partial=%v, %d steps, %+v", run.Partial, len(run.Steps), in)
	}
	path := filepath.Join(t.TempDir(), results.FileName)
	if err := results.Write(path, run); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte(`"partial":true`)) || !bytes.Contains(b, []byte(`"interrupted_step":"rate=10000/rcvbuf=32768/delay=0"`)) {
		t.Errorf("results.json does not carry the marker: %.300s", b)
	}
	got, err := results.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, run) {
		t.Error("partial run changed in a write/read round trip")
	}
	want := "PARTIAL: stopped by SIGINT after 8 of 48 samples, 1 of 8 steps complete; the sample in progress (rate=10000/rcvbuf=32768/delay=0 rep 3) was dropped"
	if d := got.Describe(); d != want {
		t.Errorf("Describe = %q\nwant       %q", d, want)
	}
	var bench bytes.Buffer
	if err := results.WriteBenchfmt(&bench, run); err != nil || !strings.Contains(bench.String(), "partial: true") {
		t.Errorf("bench.txt does not say partial (%v):\n%.400s", err, bench.String())
	}
}

func TestPartialValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(r *results.Run)
		want   string
	}{
		{"marker without interruption", func(r *results.Run) { r.Interruption = nil },
			"partial: true with interruption false"},
		{"interruption without marker", func(r *results.Run) { r.Partial = false },
			"partial: false with interruption true"},
		{"count", func(r *results.Run) { r.Interruption.CompletedSamples = 9 },
			"interruption.completed_samples: 9, but steps hold 8 samples"},
		{"planned", func(r *results.Run) { r.Interruption.PlannedSamples = 47 },
			"interruption.planned_samples: 47, but the parameters make 48"},
		{"incomplete step listed", func(r *results.Run) {
			r.Interruption.CompletedSteps = append(r.Interruption.CompletedSteps, r.Steps[1].Key().String())
		},
			"interruption.completed_steps[1]: rate=10000/rcvbuf=32768/delay=0 is not a step with all 6 repetitions"},
		{"complete step missing", func(r *results.Run) { r.Interruption.CompletedSteps = nil },
			"interruption.completed_steps: misses 1 step(s)"},
		{"no signal", func(r *results.Run) { r.Interruption.Signal = "" }, "interruption.signal: empty"},
	} {
		run := partialRun(t)
		tc.break_(run)
		var buf bytes.Buffer
		json.NewEncoder(&buf).Encode(run)
		_, err := results.Decode(&buf, "results.json")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v\nwant %q", tc.name, err, tc.want)
		}
	}
}
