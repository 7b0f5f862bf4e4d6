package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// Threshold is how large a change must be to count: more than
// max(Rel×|base median|, Abs), Abs in the metric's unit. Abs keeps
// near-zero bases (no drops, sub-microsecond latencies) from turning tiny
// absolute changes into huge relative ones, and avoids dividing by zero.
type Threshold struct {
	Rel float64 `json:"rel"`
	Abs float64 `json:"abs"`
}

// Limit is the smallest change that counts against base.
func (t Threshold) Limit(base float64) float64 {
	if base < 0 {
		base = -base
	}
	return max(t.Rel*base, t.Abs)
}

// Config sets the significance level and the per-metric thresholds.
type Config struct {
	Alpha      float64              `json:"alpha"`
	Thresholds map[string]Threshold `json:"thresholds"`
	// CrossSource allows runs of different sources (imp2 against NFLOG):
	// asked for by the caller, never by a config file, so that a gate
	// against the wrong baseline fails instead of comparing paths.
	CrossSource bool `json:"-"`
}

// DefaultConfig returns alpha 0.05 and these thresholds:
//
//	metric            worse    rel   abs       why
//	p50-*-ns          higher   10%   1µs       the median is stable; 1µs is scheduler noise
//	p90-*-ns          higher   15%   2µs
//	p99-*-ns          higher   25%   5µs       tails move with interrupts and other tenants
//	p99.9-*-ns        higher   50%   20µs      a handful of events per sample
//	drop-ratio        higher   25%   0.02      two points; beyond capacity it is 1−capacity/rate and amplifies speed noise
//	achieved-pps      lower    5%    0         the pacer holds ±1%; beyond that the sender is starved
//	queue-peak-B      higher   25%   16KiB     about 20 events of 832 B; a full queue saturates anyway
//	burst-held        lower    exact           rcvbuf/truesize, set by the kernel: any drop is real
//
// (* is unicast or e2e.) They are starting points for a noisy 2-core CI
// machine and two runs made apart; calibrate them against measured
// run-to-run noise, and expect interleaved A/B runs to bear tighter ones.
// A sweep makes about a hundred tests, so at alpha 0.05 some are
// significant by chance in every comparison; what keeps them from raising
// false alarms is that a regression must also exceed the threshold and the
// two medians' confidence intervals must not overlap (steps near the knee
// are noisy by nature and are judged against their own spread).
func DefaultConfig() Config {
	lat := func(p string, rel, abs float64) map[string]Threshold {
		return map[string]Threshold{p + "-unicast-ns": {rel, abs}, p + "-e2e-ns": {rel, abs}}
	}
	th := map[string]Threshold{
		"drop-ratio":   {0.25, 0.02},
		"achieved-pps": {0.05, 0},
		"queue-peak-B": {0.25, 16 << 10},
	}
	maps.Copy(th, lat("p50", 0.10, 1000))
	maps.Copy(th, lat("p90", 0.15, 2000))
	maps.Copy(th, lat("p99", 0.25, 5000))
	maps.Copy(th, lat("p99.9", 0.50, 20000))
	return Config{Alpha: 0.05, Thresholds: th}
}

// ReadConfig reads a JSON config such as
//
//	{"alpha": 0.01, "thresholds": {"p99-unicast-ns": {"rel": 0.4, "abs": 10000}}}
//
// over the defaults: metrics it does not name keep their default.
func ReadConfig(r io.Reader) (Config, error) {
	var over Config
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&over); err != nil {
		return Config{}, fmt.Errorf("compare config: %w", err)
	}
	cfg := DefaultConfig()
	if over.Alpha != 0 {
		cfg.Alpha = over.Alpha
	}
	maps.Copy(cfg.Thresholds, over.Thresholds)
	return cfg, cfg.Validate()
}

// Validate checks alpha and that every threshold names a metric.
func (c Config) Validate() error {
	if !(c.Alpha > 0 && c.Alpha < 0.5) {
		return fmt.Errorf("compare config: alpha %v, want 0 < alpha < 0.5", c.Alpha)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Thresholds)) {
		m, ok := metricByName(name)
		th := c.Thresholds[name]
		switch {
		case !ok:
			return fmt.Errorf("compare config: threshold for unknown metric %q", name)
		case m.Exact:
			return fmt.Errorf("compare config: %s is compared exactly and takes no threshold", name)
		case th.Rel < 0 || th.Abs < 0:
			return fmt.Errorf("compare config: %s threshold %+v cannot be negative", name, th)
		}
	}
	for _, m := range Metrics {
		if _, ok := c.Thresholds[m.Name]; !ok && !m.Exact {
			return fmt.Errorf("compare config: no threshold for %s", m.Name)
		}
	}
	return nil
}
