package results

import (
	"fmt"
	"math"
)

// Kind is what a metric's numbers are, for formatting.
type Kind int

// The kinds of metric values.
const (
	Nanoseconds Kind = iota
	Ratio
	Rate
	Bytes
	Count
)

// Use says which consumers of the metric table read a metric.
type Use int

// A metric is written to the benchstat export, compared between runs
// (internal/compare), or both.
const (
	Exported Use = 1 << iota
	Compared
)

// Metric is one quantity of a Sample. Metrics is the one table of them:
// the benchstat export and the regression comparison both read it, so a
// metric is named, directed and measured in one place.
type Metric struct {
	// Name is the unit in the benchstat export and the metric in a
	// comparison and its thresholds.
	Name string
	// HigherIsWorse says which direction is a regression.
	HigherIsWorse bool
	// Exact metrics are counts the kernel makes deterministic: compared by
	// value, no statistics, any change in the worse direction regresses.
	Exact bool
	Kind  Kind
	Use   Use
	// Value is the sample's value, false where the sample did not
	// measure it.
	Value func(*Sample) (float64, bool)
}

func latencyMetrics(name string, get func(*Sample) *Latency) []Metric {
	pct := []struct {
		label string
		v     func(*Latency) int64
		use   Use
	}{{"p50", func(l *Latency) int64 { return l.P50 }, Exported | Compared},
		{"p90", func(l *Latency) int64 { return l.P90 }, Exported | Compared},
		{"p99", func(l *Latency) int64 { return l.P99 }, Exported | Compared},
		{"p99.9", func(l *Latency) int64 { return l.P999 }, Exported | Compared},
		// The maximum is one event, too noisy to gate on.
		{"max", func(l *Latency) int64 { return l.Max }, Exported}}
	var ms []Metric
	for _, p := range pct {
		ms = append(ms, Metric{Name: p.label + "-" + name + "-ns", HigherIsWorse: true, Kind: Nanoseconds, Use: p.use,
			Value: func(s *Sample) (float64, bool) {
				l := get(s)
				if l == nil || l.Count == 0 {
					return 0, false
				}
				return float64(p.v(l)), true
			}})
	}
	return ms
}

// Metrics is the metric table, in the order comparisons list them.
var Metrics = append(append([]Metric{
	{Name: "drop-ratio", HigherIsWorse: true, Kind: Ratio, Use: Exported | Compared,
		Value: func(s *Sample) (float64, bool) { return s.DropRatio(), true }},
	{Name: "achieved-pps", Kind: Rate, Use: Exported | Compared,
		Value: func(s *Sample) (float64, bool) { return s.AchievedPPS, true }},
	{Name: "delivery-ratio", Kind: Ratio, Use: Exported,
		Value: func(s *Sample) (float64, bool) { return s.DeliveryRatio, true }},
	{Name: "drops", HigherIsWorse: true, Kind: Count, Use: Exported,
		Value: func(s *Sample) (float64, bool) { return float64(s.Dropped()), true }},
	{Name: "queue-peak-B", HigherIsWorse: true, Kind: Bytes, Use: Exported | Compared,
		Value: func(s *Sample) (float64, bool) { return float64(s.Queue.PeakBytes), len(s.Queue.Samples) > 0 }},
	{Name: "burst-held", Exact: true, Kind: Count, Use: Exported | Compared,
		Value: func(s *Sample) (float64, bool) {
			if s.BurstHeld == nil {
				return 0, false
			}
			return float64(*s.BurstHeld), true
		}},
},
	latencyMetrics("unicast", func(s *Sample) *Latency { return s.Unicast })...),
	latencyMetrics("e2e", func(s *Sample) *Latency { return s.EndToEnd })...)

// MetricsFor returns the metrics of the table that u reads, in order.
func MetricsFor(u Use) []Metric {
	var ms []Metric
	for _, m := range Metrics {
		if m.Use&u != 0 {
			ms = append(ms, m)
		}
	}
	return ms
}

// Format writes v in the metric's unit for a table.
func (m Metric) Format(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Sprint(v)
	}
	switch m.Kind {
	case Nanoseconds:
		switch a := math.Abs(v); {
		case a < 1e3:
			return fmt.Sprintf("%.0fns", v)
		case a < 1e6:
			return fmt.Sprintf("%.4gµs", v/1e3)
		case a < 1e9:
			return fmt.Sprintf("%.4gms", v/1e6)
		}
		return fmt.Sprintf("%.4gs", v/1e9)
	case Ratio:
		return fmt.Sprintf("%.2f%%", 100*v)
	case Rate:
		return fmt.Sprintf("%.0f/s", v)
	case Bytes:
		return fmt.Sprintf("%.1fKiB", v/1024)
	}
	return fmt.Sprintf("%.0f", v)
}

// better is the direction of a metric for benchstat's Unit metadata.
func (m Metric) better() string {
	if m.HigherIsWorse {
		return "lower"
	}
	return "higher"
}
