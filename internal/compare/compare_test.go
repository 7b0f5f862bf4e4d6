package compare_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/results/resultstest"
)

func opts(seed uint64) resultstest.Options {
	o := resultstest.Default()
	o.Seed = seed
	o.Events = 4000
	return o
}

func run(t *testing.T, o resultstest.Options) *results.Run {
	t.Helper()
	r := resultstest.Run(o)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func mustCompare(t *testing.T, base, new *results.Run) *compare.Verdict {
	t.Helper()
	v, err := compare.Compare(base, new, "base", "new", compare.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// regressed lists "metric@step" for each regression.
func regressed(v *compare.Verdict) []string {
	var out []string
	for _, r := range v.Regressions() {
		out = append(out, r.Metric+"@"+r.Step)
	}
	return out
}

func TestMinSamples(t *testing.T) {
	// benchstat's rule of thumb, verified against benchmath itself: the 95%
	// median interval, not the U test (which would manage with 4), needs 6.
	if n := compare.MinSamples(0.05); n != 6 {
		t.Errorf("MinSamples(0.05) = %d, want 6", n)
	}
	if n := compare.MinSamples(0.01); n != 8 {
		t.Errorf("MinSamples(0.01) = %d, want 8", n)
	}
}

func TestSelf(t *testing.T) {
	r := run(t, opts(1))
	v := mustCompare(t, r, r)
	if code, reason := compare.ExitStatus(v, nil); code != compare.ExitOK {
		t.Fatalf("self-comparison: exit %d: %s", code, reason)
	}
	if len(v.Rows) != len(r.Steps)*len(compare.Metrics) {
		t.Errorf("%d rows, want every metric at every step (%d)", len(v.Rows), len(r.Steps)*len(compare.Metrics))
	}
}

func TestInjectedSlowdown(t *testing.T) {
	// A consumer that spends 3µs more per event (12.5 → 15.5µs of service):
	// latencies rise at every rate, the queue fills earlier, and at the top
	// rate a fifth more of the events are dropped. The sender is unaffected.
	detected := 0
	const n = 20
	for i := range uint64(n) {
		base := run(t, opts(100+i))
		o := opts(200 + i)
		o.ExtraCost = 3 * time.Microsecond
		v := mustCompare(t, base, run(t, o))
		code, reason := compare.ExitStatus(v, nil)
		reg := regressed(v)
		if code != compare.ExitRegression {
			t.Errorf("seed %d: exit %d: %s", i, code, reason)
			continue
		}
		detected++
		for _, want := range []string{
			"p50-unicast-ns@rate=2000/rcvbuf=32768/delay=0",
			"p50-e2e-ns@rate=10000/rcvbuf=212992/delay=0",
			"p99-unicast-ns@rate=50000/rcvbuf=212992/delay=0",
			"drop-ratio@rate=100000/rcvbuf=32768/delay=0",
		} {
			if !slices.Contains(reg, want) {
				t.Errorf("seed %d: %s not named among regressions %v", i, want, reg)
			}
		}
		for _, r := range reg {
			if strings.HasPrefix(r, "achieved-pps") || strings.HasPrefix(r, "burst-held") {
				t.Errorf("seed %d: %s regressed, but the slowdown does not touch it", i, r)
			}
		}
		if i == 0 {
			t.Logf("%s\n%d regressions: %v", reason, len(reg), reg)
		}
	}
	t.Logf("detected %d of %d injected slowdowns", detected, n)
}

func TestNoFalseAlarms(t *testing.T) {
	// Independent runs of one configuration: per-repetition machine noise
	// (3% lognormal), sampling noise in every histogram, noisy drop counts.
	const n = 25
	significant, alarms := 0, 0
	for i := range uint64(n) {
		v := mustCompare(t, run(t, opts(1000+i)), run(t, opts(2000+i)))
		if code, reason := compare.ExitStatus(v, nil); code != compare.ExitOK {
			t.Errorf("comparison %d of two runs of one distribution: exit %d: %s", i, code, reason)
			alarms++
		}
		for _, r := range v.Rows {
			if r.P != nil && *r.P < v.Alpha {
				significant++
			}
		}
	}
	// Significance alone would alarm on most comparisons: the thresholds
	// carry the weight. Show it, so a change to them is visible.
	t.Logf("%d false alarms in %d comparisons; %d rows were significant at alpha 0.05 but not regressions", alarms, n, significant)
	if significant == 0 {
		t.Error("no row was significant: the noise model is too tame to test the thresholds")
	}
}

func TestZeroDropsBothSides(t *testing.T) {
	o := opts(7)
	o.Rates = []int{1000, 2000}
	base, new := run(t, o), run(t, opts(8))
	o.Seed = 8
	new = run(t, o)
	v := mustCompare(t, base, new)
	for _, r := range v.Rows {
		if r.Metric == "drop-ratio" && (r.Base.Median != 0 || r.New.Median != 0 || r.Status != compare.Same || r.Change != nil) {
			t.Errorf("drop-ratio with no drops: %+v", r)
		}
	}
	if code, reason := compare.ExitStatus(v, nil); code != compare.ExitOK {
		t.Errorf("exit %d: %s", code, reason)
	}
	var buf bytes.Buffer
	if err := v.WriteJSON(&buf); err != nil {
		t.Fatalf("JSON with zero drops: %v", err)
	}
}

func TestDropsFromZero(t *testing.T) {
	// No drops in base and 3% in new: no ratio to take, still a regression.
	o := opts(3)
	o.Rates = []int{10000}
	base := run(t, o)
	new := run(t, o)
	for i := range new.Steps {
		for j := range new.Steps[i].Samples {
			s := &new.Steps[i].Samples[j]
			d := s.Received * 3 / 97
			s.Drops.ModuleEAGAIN, s.Drops.MeminfoDrops, s.Drops.SeqGaps = &d, &d, &d
			s.Drops.Reconcile()
		}
	}
	v := mustCompare(t, base, new)
	reg := regressed(v)
	if !slices.Contains(reg, "drop-ratio@rate=10000/rcvbuf=32768/delay=0") {
		t.Errorf("regressions %v, want drop-ratio from 0 to 3%%", reg)
	}
}

func TestExactCounts(t *testing.T) {
	base := run(t, opts(5))
	// Another kernel: a bigger truesize, so the default buffer holds fewer.
	fewer := run(t, opts(5))
	for i := range fewer.Steps {
		for j := range fewer.Steps[i].Samples {
			held := *fewer.Steps[i].Samples[j].BurstHeld * 768 / 832
			fewer.Steps[i].Samples[j].BurstHeld = &held
		}
	}
	v := mustCompare(t, base, fewer)
	if reg := regressed(v); len(reg) != len(base.Steps) || !strings.HasPrefix(reg[0], "burst-held@") {
		t.Errorf("regressions %v, want burst-held at every step and nothing else", reg)
	}
	// A deterministic count that varies is not something to gate on.
	unstable := run(t, opts(5))
	odd := int64(1)
	unstable.Steps[0].Samples[2].BurstHeld = &odd
	v = mustCompare(t, base, unstable)
	code, reason := compare.ExitStatus(v, nil)
	if code != compare.ExitUnusable || !strings.Contains(reason, "burst-held") || !strings.Contains(reason, "new varies from 1 to 78") {
		t.Errorf("exit %d: %s", code, reason)
	}
}

func TestUnusable(t *testing.T) {
	good := run(t, opts(1))
	few := opts(2)
	few.Reps = 3
	nflog := opts(3)
	nflog.Source = results.SourceNFLOG
	other := opts(4)
	other.Rates = []int{3000}
	badCfg := compare.DefaultConfig()
	badCfg.Alpha = 0
	for _, tc := range []struct {
		name string
		new  *results.Run
		cfg  compare.Config
		want string
	}{
		{"too few samples", run(t, few), compare.DefaultConfig(), "too few samples: need 6 per side at alpha 0.05; 88 of 96 comparisons have fewer (base 6, new 3 at the least)"},
		{"other source", run(t, nflog), compare.DefaultConfig(), "unusable input: base comes from source kmod and new from source nflog"},
		{"no common step", run(t, other), compare.DefaultConfig(), "unusable input: base and new have no sweep step"},
		{"bad config", good, badCfg, "unusable input: compare config: alpha 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := compare.Compare(good, tc.new, "base", "new", tc.cfg)
			code, reason := compare.ExitStatus(v, err)
			if code != compare.ExitUnusable || !strings.Contains(reason, tc.want) || strings.Contains(reason, "\n") {
				t.Errorf("exit %d: %q, want 2 with %q on one line", code, reason, tc.want)
			}
		})
	}
	// An unreadable file (results.Read's error) is unusable too.
	_, err := results.Decode(strings.NewReader(`{"schema_version":"9.0"}`), "new/results.json")
	if code, reason := compare.ExitStatus(nil, err); code != compare.ExitUnusable || !strings.HasPrefix(reason, "unusable input: new/results.json: schema_version: 9.0 is newer") {
		t.Errorf("exit %d: %s", code, reason)
	}
}

func TestReadConfig(t *testing.T) {
	cfg, err := compare.ReadConfig(strings.NewReader(`{"alpha": 0.01, "thresholds": {"p50-unicast-ns": {"rel": 0.5, "abs": 0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alpha != 0.01 || cfg.Thresholds["p50-unicast-ns"].Rel != 0.5 || cfg.Thresholds["p99-unicast-ns"] != compare.DefaultConfig().Thresholds["p99-unicast-ns"] {
		t.Errorf("config %+v", cfg)
	}
	for _, bad := range []string{
		`{"thresholds": {"p42-ns": {"rel": 1}}}`,
		`{"thresholds": {"burst-held": {"rel": 1}}}`,
		`{"thresholds": {"drop-ratio": {"rel": -1}}}`,
		`{"alfa": 0.1}`,
	} {
		if _, err := compare.ReadConfig(strings.NewReader(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// A looser p50 threshold lets the slowdown's median shift through.
	base := run(t, opts(11))
	o := opts(12)
	o.ExtraCost = 3 * time.Microsecond
	loose, err := compare.ReadConfig(strings.NewReader(`{"thresholds": {"p50-unicast-ns": {"rel": 0.5, "abs": 0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	v, err := compare.Compare(base, run(t, o), "base", "new", loose)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regressed(v) {
		if r == "p50-unicast-ns@rate=2000/rcvbuf=32768/delay=0" {
			t.Errorf("%s regressed despite a 50%% threshold", r)
		}
	}
}

func TestOutputs(t *testing.T) {
	base := run(t, opts(21))
	o := opts(22)
	o.ExtraCost = 3 * time.Microsecond
	o.Source = results.SourceKmod
	new := run(t, o)
	new.Environment.KernelRelease = "6.18.0"
	v := mustCompare(t, base, new)
	var tab bytes.Buffer
	if err := v.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	text := tab.String()
	for _, want := range []string{
		"note: kernel differs: base 6.1.0-synthetic, new 6.18.0",
		"STEP", "METRIC", "p99.9-e2e-ns", "REGRESSION: ",
		"\nexit 1: regression in ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	t.Logf("table:\n%s", text)
	var js bytes.Buffer
	if err := v.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Exit   int    `json:"exit"`
		Reason string `json:"reason"`
		Rows   []compare.Row
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Exit != 1 || !strings.HasPrefix(back.Reason, "regression in") || len(back.Rows) != len(v.Rows) {
		t.Errorf("JSON exit %d reason %q rows %d", back.Exit, back.Reason, len(back.Rows))
	}
}

func TestErrUnusableIsWrapped(t *testing.T) {
	r := run(t, opts(1))
	nf := opts(2)
	nf.Source = results.SourceEmu
	_, err := compare.Compare(r, run(t, nf), "a", "b", compare.DefaultConfig())
	if !errors.Is(err, compare.ErrUnusable) {
		t.Errorf("error %v does not wrap ErrUnusable", err)
	}
}

// TestPartialRunRefused: a run stopped by a signal is no sweep to pass or
// fail, on either side, even where the steps it has would match.
func TestPartialRunRefused(t *testing.T) {
	for _, side := range []string{"base", "new"} {
		base, new := run(t, opts(1)), run(t, opts(2))
		p := new
		if side == "base" {
			p = base
		}
		p.Steps = p.Steps[:3]
		p.Overhead = nil
		p.MarkPartial("SIGINT", nil, 0)
		_, err := compare.Compare(base, new, "base", "new", compare.DefaultConfig())
		want := side + " is a partial run (PARTIAL: stopped by SIGINT after 18 of 48 samples, 3 of 8 steps complete); compare only complete sweeps"
		if !errors.Is(err, compare.ErrUnusable) || !strings.Contains(err.Error(), want) {
			t.Errorf("partial %s: error %v\nwant ErrUnusable with %q", side, err, want)
		}
		if code, _ := compare.ExitStatus(nil, err); code != 2 {
			t.Errorf("partial %s: exit %d, want 2", side, code)
		}
	}
}
