package compare

import (
	"fmt"
	"math"

	"github.com/imp2/imp2/internal/results"
)

// kind is what a metric's numbers are, for formatting.
type kind int

const (
	nanoseconds kind = iota
	ratio
	rate
	bytes
	count
)

// Metric is one quantity compared per sweep step.
type Metric struct {
	Name string
	// HigherIsWorse says which direction is a regression.
	HigherIsWorse bool
	// Exact metrics are counts the kernel makes deterministic: compared by
	// value, no statistics, any change in the worse direction regresses.
	Exact bool
	kind  kind
	value func(*results.Sample) (float64, bool)
}

func latencyMetrics(name string, get func(*results.Sample) *results.Latency) []Metric {
	pct := []struct {
		label string
		v     func(*results.Latency) int64
	}{{"p50", func(l *results.Latency) int64 { return l.P50 }}, {"p90", func(l *results.Latency) int64 { return l.P90 }},
		{"p99", func(l *results.Latency) int64 { return l.P99 }}, {"p99.9", func(l *results.Latency) int64 { return l.P999 }}}
	var ms []Metric
	for _, p := range pct {
		ms = append(ms, Metric{Name: p.label + "-" + name + "-ns", HigherIsWorse: true, kind: nanoseconds, value: func(s *results.Sample) (float64, bool) {
			l := get(s)
			if l == nil || l.Count == 0 {
				return 0, false
			}
			return float64(p.v(l)), true
		}})
	}
	return ms
}

// Metrics are the compared quantities, named as in the benchstat export.
// The maximum latency is left out: it is one event, too noisy to gate.
var Metrics = append(append([]Metric{
	{Name: "drop-ratio", HigherIsWorse: true, kind: ratio, value: func(s *results.Sample) (float64, bool) { return s.DropRatio(), true }},
	{Name: "achieved-pps", kind: rate, value: func(s *results.Sample) (float64, bool) { return s.AchievedPPS, true }},
	{Name: "queue-peak-B", HigherIsWorse: true, kind: bytes, value: func(s *results.Sample) (float64, bool) {
		return float64(s.Queue.PeakBytes), len(s.Queue.Samples) > 0
	}},
	{Name: "burst-held", Exact: true, kind: count, value: func(s *results.Sample) (float64, bool) {
		if s.BurstHeld == nil {
			return 0, false
		}
		return float64(*s.BurstHeld), true
	}},
},
	latencyMetrics("unicast", func(s *results.Sample) *results.Latency { return s.Unicast })...),
	latencyMetrics("e2e", func(s *results.Sample) *results.Latency { return s.EndToEnd })...)

func metricByName(name string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// format writes v in the metric's unit for a table.
func (m Metric) format(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Sprint(v)
	}
	switch m.kind {
	case nanoseconds:
		switch a := math.Abs(v); {
		case a < 1e3:
			return fmt.Sprintf("%.0fns", v)
		case a < 1e6:
			return fmt.Sprintf("%.4gµs", v/1e3)
		case a < 1e9:
			return fmt.Sprintf("%.4gms", v/1e6)
		}
		return fmt.Sprintf("%.4gs", v/1e9)
	case ratio:
		return fmt.Sprintf("%.2f%%", 100*v)
	case rate:
		return fmt.Sprintf("%.0f/s", v)
	case bytes:
		return fmt.Sprintf("%.1fKiB", v/1024)
	}
	return fmt.Sprintf("%.0f", v)
}
