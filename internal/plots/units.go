package plots

import (
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
)

// timeUnit is the unit of a latency axis.
type timeUnit struct {
	name string
	ns   float64 // nanoseconds per unit
}

var timeUnits = []timeUnit{{"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}}

// latencyUnit is the unit for a latency axis whose largest value is maxNs:
// the largest of µs, ms and s in which that value is still at least 10, so
// tick labels stay within four digits or so (500 ms, not 500000 µs) and
// short ones stay in µs (800 µs, not 0.8 ms).
func latencyUnit(maxNs float64) timeUnit {
	u := timeUnits[0]
	for _, t := range timeUnits[1:] {
		if maxNs/t.ns >= 10 {
			u = t
		}
	}
	return u
}

// floor is 1 ns in the unit: what stands in for zero on a log axis.
func (u timeUnit) floor() float64 { return 1 / u.ns }

// latencySeries is one line of a latency panel, its points in ns.
type latencySeries struct {
	pts   []point
	style style
}

// latencyUnitOf is the unit the panel's largest value suits.
func latencyUnitOf(series []latencySeries) timeUnit {
	top := 0.0
	for _, s := range series {
		for _, pt := range s.pts {
			top = max(top, pt.hi, pt.y)
		}
	}
	return latencyUnit(top)
}

// addLatency draws series in unit u.
func addLatency(p *plot.Plot, series []latencySeries, u timeUnit) error {
	for _, s := range series {
		pts := make([]point, len(s.pts))
		for i, pt := range s.pts {
			pts[i] = point{pt.x, pt.y / u.ns, pt.lo / u.ns, pt.hi / u.ns}
		}
		if err := addSeries(p, pts, s.style, u.floor()); err != nil {
			return err
		}
	}
	return nil
}

// linearTicks labels a linear axis every 1, 2 or 5 times a power of ten,
// the smallest such step that gives at most maxLinearLabels labels, with
// unlabelled ticks halfway: gonum's default labels few and, over a range
// such as 0–260, writes "0.00" and "250.00".
type linearTicks struct{}

// maxLinearLabels is the most labels linearTicks puts on an axis.
const maxLinearLabels = 6

func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: formatTick(lo, 0)}}
	}
	step, exp := linearStep(hi - lo)
	half := step / 2
	var ticks []plot.Tick
	for k := math.Ceil(lo / half); k*half <= hi+half*1e-9; k++ {
		t := plot.Tick{Value: k * half}
		if math.Mod(k, 2) == 0 {
			t.Label = formatTick(k*half, exp)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// linearStep is the label step for a range: 1, 2 or 5 × 10^exp.
func linearStep(span float64) (step float64, exp int) {
	exp = int(math.Floor(math.Log10(span / maxLinearLabels)))
	for {
		for _, m := range []float64{1, 2, 5} {
			step = m * math.Pow(10, float64(exp))
			if span/step < maxLinearLabels {
				return step, exp
			}
		}
		exp++
	}
}

// formatTick writes v with the decimals a step of 10^exp needs, and no
// trailing zeros ("1", not "1.0").
func formatTick(v float64, exp int) string {
	s := strconv.FormatFloat(v, 'f', max(0, -exp), 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}
