package bench

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/compare"
)

// samples makes n gate samples whose CPU cost is base·drift(i)·factor(i):
// a drift common to both sides of a pair (the machine's speed) and the
// side's own factor.
func samples(n int, base float64, drift, factor func(i int) float64) []GateSample {
	s := make([]GateSample, n)
	for i := range s {
		v := base * drift(i) * factor(i)
		s[i] = GateSample{Sent: 1000, CPUNs: v, WallNs: v, BusyNs: v}
	}
	return s
}

// wave is a machine whose speed swings by ±30% from pair to pair, far more
// than the changes the rule must see: pairing must cancel it.
func wave(i int) float64 { return 1 + 0.3*math.Sin(float64(i)*1.7) }

func TestGateRuleDecides(t *testing.T) {
	rule := DefaultGateRule
	m := GateMetrics[0]
	jitter := func(amp float64) func(int) float64 {
		return func(i int) float64 { return 1 + amp*math.Sin(float64(i)*2.3+0.4) }
	}
	one := func(int) float64 { return 1 }
	for _, tc := range []struct {
		name      string
		base, new []GateSample
		want      compare.Status
	}{
		{"identical with drift", samples(12, 50000, wave, one), samples(12, 50000, wave, jitter(0.01)), compare.Same},
		{"+10% with drift", samples(12, 50000, wave, one), samples(12, 50000, wave, func(i int) float64 { return 1.10 * jitter(0.01)(i) }), compare.Worse},
		{"-10% with drift", samples(12, 50000, wave, one), samples(12, 50000, wave, func(i int) float64 { return 0.90 * jitter(0.01)(i) }), compare.Better},
		// Significant (every pair +2%) but below MinChange: no alarm.
		{"+2% consistent", samples(12, 50000, wave, one), samples(12, 50000, wave, func(i int) float64 { return 1.02 * jitter(0.002)(i) }), compare.Same},
		// +10% in most pairs but noise that crosses 1: not significant.
		{"+10% in noise", samples(12, 50000, wave, one), samples(12, 50000, wave, jitter(0.5)), compare.Same},
		{"too few pairs", samples(5, 50000, wave, one), samples(5, 50000, wave, func(int) float64 { return 2 }), compare.TooFew},
		{"a zero cost", samples(12, 50000, wave, one), append(samples(11, 50000, wave, one), GateSample{}), compare.TooFew},
	} {
		d := rule.Decide(m, tc.base, tc.new)
		if d.Status != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, d, tc.want)
		}
		if d.Status != compare.TooFew && !strings.Contains(d.String(), m.Name) {
			t.Errorf("%s: %q does not name the metric", tc.name, d)
		}
	}
}

// TestGateRuleSizeAndConfidence: the decision states the change and its
// interval, and the interval holds the true ratio.
func TestGateRuleSizeAndConfidence(t *testing.T) {
	base := samples(12, 40000, wave, func(int) float64 { return 1 })
	cand := samples(12, 40000, wave, func(i int) float64 { return 1.25 + 0.01*math.Sin(float64(i)) })
	d := DefaultGateRule.Decide(GateMetrics[0], base, cand)
	if d.Status != compare.Worse || d.ChangeLo > 0.25 || d.ChangeHi < 0.25 || math.Abs(d.Change-0.25) > 0.01 {
		t.Fatalf("%s: want a regression of +25%% inside its interval", d)
	}
	if d.Confidence != 0.99 || d.Pairs != 12 {
		t.Errorf("confidence %g over %d pairs, want 0.99 over 12", d.Confidence, d.Pairs)
	}
	for _, want := range []string{"+25.", "99% confidence", "12 interleaved pairs", "regression"} {
		if !strings.Contains(d.String(), want) {
			t.Errorf("%q lacks %q", d, want)
		}
	}
}

func TestMinGatePairs(t *testing.T) {
	for _, tc := range []struct {
		alpha float64
		want  int
	}{{0.05, 6}, {0.01, 8}, {0.001, 11}} {
		if got := MinGatePairs(GateRule{Alpha: tc.alpha}); got != tc.want {
			t.Errorf("alpha %g: %d pairs, want %d", tc.alpha, got, tc.want)
		}
		// The sign-test interval is finite from there on, not before.
		r := GateRule{Alpha: tc.alpha}
		n := tc.want
		one := func(int) float64 { return 1 }
		if d := r.Decide(GateMetrics[0], samples(n, 1000, wave, one), samples(n, 1000, wave, one)); d.Status == compare.TooFew {
			t.Errorf("alpha %g, %d pairs: %s", tc.alpha, n, d)
		}
		if d := r.Decide(GateMetrics[0], samples(n-1, 1000, wave, one), samples(n-1, 1000, wave, one)); d.Status != compare.TooFew {
			t.Errorf("alpha %g, %d pairs: %s, want too few", tc.alpha, n-1, d)
		}
	}
}

func TestCheckExact(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ExactBaselineFile)
	if _, err := CheckExact(file, "6.1.0-57-amd64", map[string]int64{"16384": 21}, false); err == nil {
		t.Fatal("a missing baseline file passed")
	}
	if err := writeJSON(dir, ExactBaselineFile, ExactBaseline{Kernels: map[string]map[string]int64{
		"6.1.0-56-amd64": {"16384": 21, "212992": 277},
	}}); err != nil {
		t.Fatal(err)
	}
	same := map[string]int64{"16384": 21, "212992": 277}
	if c, err := CheckExact(file, "6.1.0-56-amd64", same, false); err != nil || c.Added || len(c.Diffs) != 0 {
		t.Fatalf("same counts: %+v, %v", c, err)
	}
	c, err := CheckExact(file, "6.1.0-56-amd64", map[string]int64{"16384": 20, "212992": 277}, false)
	if err != nil || len(c.Diffs) != 1 || !strings.Contains(c.String(), "REGRESSION") || !strings.Contains(c.String(), "20, baseline 21") {
		t.Fatalf("one count fewer: %v, %v", c, err)
	}
	// Another kernel: never skipped, its entry is written and announced.
	c, err = CheckExact(file, "6.1.0-57-amd64", map[string]int64{"16384": 22, "212992": 280}, false)
	if err != nil || !c.Added || !strings.Contains(c.String(), "new baseline for 6.1.0-57-amd64") || !strings.Contains(c.String(), "commit it") {
		t.Fatalf("new kernel: %v, %v", c, err)
	}
	if c, err := CheckExact(file, "6.1.0-57-amd64", map[string]int64{"16384": 22, "212992": 280}, false); err != nil || c.Added || len(c.Diffs) != 0 {
		t.Fatalf("the written entry is not the baseline now: %+v, %v", c, err)
	}
	if c, err := CheckExact(file, "6.1.0-56-amd64", map[string]int64{"16384": 21}, false); err != nil || len(c.Diffs) != 1 {
		t.Fatalf("a count not measured: %+v, %v", c, err)
	}
	// On purpose (-rebaseline): the entry is replaced, and said so.
	if c, err := CheckExact(file, "6.1.0-56-amd64", map[string]int64{"16384": 25, "212992": 300}, true); err != nil || !c.Added {
		t.Fatalf("rebaseline: %+v, %v", c, err)
	}
	if c, err := CheckExact(file, "6.1.0-56-amd64", map[string]int64{"16384": 25, "212992": 300}, false); err != nil || len(c.Diffs) != 0 {
		t.Fatalf("after rebaseline: %+v, %v", c, err)
	}
	os.WriteFile(file, []byte(`{"kernels": {"6.1.0-56-amd64": {}}}`), 0o644)
	if _, err := CheckExact(file, "6.1.0-56-amd64", same, false); !errors.Is(err, compare.ErrUnusable) || !strings.Contains(err.Error(), file) {
		t.Fatalf("an empty entry: %v, want unusable naming the file", err)
	}
}
