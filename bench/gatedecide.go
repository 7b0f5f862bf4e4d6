package bench

import (
	"fmt"
	"math"
	"strings"

	"golang.org/x/perf/benchmath"

	"github.com/imp2/imp2/internal/compare"
)

// GateSample is one flood of the A/B gate with one side's module loaded
// and its consumer draining: costs per packet sent, in ns. WallNs is the
// unpaced flood's wall time (the hook runs in the sender's softirq, so a
// slower hook slows the flood); CPUNs the CPU time of the bench process,
// which includes that softirq work, and of the consumer process
// together; ConsumerNs the consumer's part of it; BusyNs all guest CPUs'
// busy time (/proc/stat, tick resolution).
type GateSample struct {
	Sent       int64   `json:"sent"`
	WallNs     float64 `json:"wall_ns_per_event"`
	CPUNs      float64 `json:"cpu_ns_per_event"`
	ConsumerNs float64 `json:"consumer_cpu_ns_per_event"`
	BusyNs     float64 `json:"busy_ns_per_event"`
}

// gateSamples is what the guest writes (gateGuestFile): per module, its
// samples in repetition order, and the probed module's burst-held count
// per receive buffer (bytes, as a string key).
type gateSamples struct {
	Kernel    string           `json:"kernel_release"`
	Labels    []string         `json:"labels"`
	Samples   [][]GateSample   `json:"samples"`
	BurstHeld map[string]int64 `json:"burst_held,omitempty"`
}

const gateGuestFile = "gate.json"

// GateMetric is one cost of GateSample the gate can decide on.
type GateMetric struct {
	Name string
	get  func(GateSample) float64
}

// GateMetrics are the costs measured; the first is the one decided on
// (the README's gate section has the calibration that chose it), the
// others are shown.
var GateMetrics = []GateMetric{
	{"cpu-ns/event", func(s GateSample) float64 { return s.CPUNs }},
	{"wall-ns/event", func(s GateSample) float64 { return s.WallNs }},
	{"consumer-cpu-ns/event", func(s GateSample) float64 { return s.ConsumerNs }},
	{"busy-ns/event", func(s GateSample) float64 { return s.BusyNs }},
}

// GateRule is the decision rule: a regression is a median paired ratio
// (candidate/base, repetition by repetition) whose 1−Alpha confidence
// interval lies wholly above 1 and whose median exceeds 1+MinChange.
type GateRule struct {
	Alpha     float64
	MinChange float64
}

// DefaultGateRule is the calibrated rule (README, gate section).
var DefaultGateRule = GateRule{Alpha: 0.01, MinChange: 0.05}

// GateDecision is one metric's verdict. Ratio is the median paired
// candidate/base ratio, Lo and Hi its confidence interval; P is the
// Mann–Whitney U test of the two sides, shown for reference.
type GateDecision struct {
	Metric        string         `json:"metric"`
	Pairs         int            `json:"pairs"`
	Base, New     float64        `json:"-"`
	BaseMedian    float64        `json:"base_median"`
	NewMedian     float64        `json:"new_median"`
	Ratio, Lo, Hi float64        `json:"-"`
	Change        float64        `json:"change"`
	ChangeLo      float64        `json:"change_lo"`
	ChangeHi      float64        `json:"change_hi"`
	Confidence    float64        `json:"confidence"`
	P             float64        `json:"p"`
	Status        compare.Status `json:"status"`
	Reason        string         `json:"reason"`
	rule          GateRule
}

// Decide judges candidate against base on metric under rule. The samples
// pair up by index (the guest's repetitions, taken next to each other in
// time); unpaired leftovers are ignored. Too few pairs for a finite
// interval is compare.TooFew, never a pass by default.
func (rule GateRule) Decide(m GateMetric, base, cand []GateSample) GateDecision {
	n := min(len(base), len(cand))
	d := GateDecision{Metric: m.Name, Pairs: n, Confidence: 1 - rule.Alpha}
	bv, cv, ratios := make([]float64, n), make([]float64, n), make([]float64, 0, n)
	for i := 0; i < n; i++ {
		bv[i], cv[i] = m.get(base[i]), m.get(cand[i])
		if bv[i] > 0 && cv[i] > 0 {
			ratios = append(ratios, cv[i]/bv[i])
		}
	}
	th := &benchmath.Thresholds{CompareAlpha: rule.Alpha}
	if n > 0 {
		d.BaseMedian = benchmath.AssumeNothing.Summary(benchmath.NewSample(bv, th), 0.5).Center
		d.NewMedian = benchmath.AssumeNothing.Summary(benchmath.NewSample(cv, th), 0.5).Center
		d.P = benchmath.AssumeNothing.Compare(benchmath.NewSample(bv, th), benchmath.NewSample(cv, th)).P
	}
	if len(ratios) < n || n == 0 {
		d.Status, d.Reason = compare.TooFew, fmt.Sprintf("%d of %d pairs have a zero or negative cost", n-len(ratios), n)
		return d
	}
	s := benchmath.AssumeNothing.Summary(benchmath.NewSample(ratios, th), 1-rule.Alpha)
	d.Ratio, d.Lo, d.Hi = s.Center, s.Lo, s.Hi
	d.Change, d.ChangeLo, d.ChangeHi = s.Center-1, s.Lo-1, s.Hi-1
	switch {
	case math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0):
		d.Status = compare.TooFew
		d.Reason = fmt.Sprintf("%d pairs give no finite %.0f%% interval", n, 100*(1-rule.Alpha))
	case s.Lo > 1 && d.Change > rule.MinChange:
		d.Status, d.Reason = compare.Worse, "interval above 1 and change beyond the threshold"
	case s.Hi < 1 && -d.Change > rule.MinChange:
		d.Status, d.Reason = compare.Better, "interval below 1 and change beyond the threshold"
	case s.Lo > 1 || s.Hi < 1:
		d.Status, d.Reason = compare.Same, fmt.Sprintf("significant but within ±%.0f%%", 100*rule.MinChange)
	default:
		d.Status, d.Reason = compare.Same, "interval contains 1"
	}
	return d
}

// String is the decision in one line: the metric, the size of the change
// with its interval, and the outcome.
func (d GateDecision) String() string {
	if math.IsInf(d.Lo, 0) || d.Pairs == 0 || d.Status == compare.TooFew {
		return fmt.Sprintf("%s: %s (%s)", d.Metric, d.Status, d.Reason)
	}
	return fmt.Sprintf("%s: %.0f -> %.0f ns, %+.1f%% [%+.1f%%, %+.1f%%] at %.0f%% confidence over %d interleaved pairs (U test p=%.2g): %s (%s)",
		d.Metric, d.BaseMedian, d.NewMedian, 100*d.Change, 100*d.ChangeLo, 100*d.ChangeHi,
		100*d.Confidence, d.Pairs, d.P, d.Status, d.Reason)
}

// gateVerdict decides every metric; the first (GateMetrics[0]) decides.
func (rule GateRule) gateVerdict(base, cand []GateSample) []GateDecision {
	var ds []GateDecision
	for _, m := range GateMetrics {
		ds = append(ds, rule.Decide(m, base, cand))
	}
	return ds
}

// describeDecisions lists ds, the deciding one first, marked.
func describeDecisions(ds []GateDecision) string {
	var b strings.Builder
	for i, d := range ds {
		mark := "  shown:   "
		if i == 0 {
			mark = "  decides: "
		}
		b.WriteString(mark + d.String() + "\n")
	}
	return b.String()
}
