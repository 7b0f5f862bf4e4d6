package bench

import (
	"math"

	"golang.org/x/perf/benchmath"

	"github.com/imp2/imp2/internal/results"
)

// overheadConfidence is the confidence level of an overhead's interval.
const overheadConfidence = 0.95

// pairedOverhead summarises interleaved measurements of one workload
// without and with a cost: without[i] and with[i] ran back to back, so
// their difference is free of the drift between pairs (a loaded host, a
// VM's stalls). The overhead is the median difference with benchmath's
// distribution-free interval (order statistics: 6 pairs at least for a
// finite 95% one); it is not distinguishable from zero when the interval
// holds 0 or cannot be given.
func pairedOverhead(method, unit string, without, with []float64) *results.Overhead {
	n := min(len(without), len(with))
	if n == 0 {
		return nil
	}
	diffs := make([]float64, n)
	for i := range diffs {
		diffs[i] = with[i] - without[i]
	}
	th := benchmath.DefaultThresholds
	o := &results.Overhead{Method: method, Unit: unit, Pairs: n, Confidence: overheadConfidence,
		Without: median(without[:n]), With: median(with[:n])}
	sum := benchmath.AssumeNothing.Summary(benchmath.NewSample(diffs, &th), overheadConfidence)
	o.Diff = sum.Center
	if !math.IsInf(sum.Lo, 0) && !math.IsInf(sum.Hi, 0) {
		o.DiffCI = &[2]float64{sum.Lo, sum.Hi}
		o.Confidence = sum.Confidence
	}
	return o
}
