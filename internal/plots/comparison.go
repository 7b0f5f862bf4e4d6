package plots

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/imp2/imp2/internal/results"
)

// WriteComparison writes compare.png and compare.svg: base and new side by
// side for each (receive buffer, consumer delay) series they share: p50
// and p99 latency, drop ratio and receive-queue peak against offered rate,
// base dashed in grey, new solid in colour.
func WriteComparison(base, new *results.Run, baseName, newName, dir string) ([]string, error) {
	var shared []combo
	newCombos := combos(new)
	for _, c := range combos(base) {
		if slices.Contains(newCombos, c) {
			shared = append(shared, c)
		}
	}
	if len(shared) == 0 {
		return nil, fmt.Errorf("compare plot: %s and %s share no (rcvbuf, delay) series", baseName, newName)
	}
	var rs []int
	for _, r := range append(rates(base), rates(new)...) {
		if !slices.Contains(rs, r) {
			rs = append(rs, r)
		}
	}
	slices.Sort(rs)
	sides := []side{
		{base, "base " + baseName, color.Gray{Y: 110}, []vg.Length{vg.Points(5), vg.Points(3)}},
		{new, "new " + newName, plotutil.Color(0), nil},
	}
	// Latency from the kind both runs carry, unicast first.
	var kind *latencyKind
	for _, k := range kindsIn(base) {
		if slices.ContainsFunc(kindsIn(new), func(o latencyKind) bool { return o.title == k.title }) {
			kind = &k
			break
		}
	}
	f := &figure{name: "compare"}
	for _, c := range shared {
		var row []*plot.Plot
		if kind != nil {
			p, err := latencyComparison(kind, sides, c, rs)
			if err != nil {
				return nil, err
			}
			row = append(row, p)
		}
		drops := newPlot("Drop ratio: base vs new\n"+c.String(), "offered rate (packets/s, log scale)", "dropped (% of events sent by the hook)")
		peak := newPlot("Receive-queue peak: base vs new\n"+c.String(), "offered rate (packets/s, log scale)", "peak rmem_alloc (KiB)")
		for _, s := range sides {
			steps := stepsOf(s.run, c)
			st := style{s.name, s.col, s.dash, plotutil.Shape(0)}
			if err := addSeries(drops, seriesOf(steps, func(_ *results.Step, sm *results.Sample) (float64, bool) { return 100 * sm.DropRatio(), true }), st, 0); err != nil {
				return nil, err
			}
			if err := addSeries(peak, seriesOf(steps, func(_ *results.Step, sm *results.Sample) (float64, bool) {
				return float64(sm.Queue.PeakBytes) / 1024, true
			}), st, 0); err != nil {
				return nil, err
			}
		}
		for _, p := range []*plot.Plot{drops, peak} {
			rateAxis(&p.X, rs)
			p.Y.Min, p.Y.Max = 0, max(1, p.Y.Max*1.4)
		}
		drops.Y.Max = min(drops.Y.Max, 100)
		f.grid = append(f.grid, append(row, drops, peak))
	}
	return f.write(dir)
}

// side is one run of a comparison plot, with its legend name and style.
type side struct {
	run  *results.Run
	name string
	col  color.Color
	dash []vg.Length
}

// latencyComparison is the p50 and p99 latency of kind in series c, each
// side's, against the offered rates rs.
func latencyComparison(kind *latencyKind, sides []side, c combo, rs []int) (*plot.Plot, error) {
	p := newPlot(fmt.Sprintf("%s: base vs new\n%s", kind.title, c), "offered rate (packets/s, log scale)", "latency (µs, log scale)")
	for _, s := range sides {
		for i, pc := range []int{0, 2} { // p50, p99
			pct := percentiles[pc]
			pts := seriesOf(stepsOf(s.run, c), func(_ *results.Step, sm *results.Sample) (float64, bool) {
				l := kind.get(sm)
				if l == nil || l.Count == 0 {
					return 0, false
				}
				return float64(pct.get(l)) / 1e3, true
			})
			st := style{s.name + " " + pct.label, s.col, s.dash, plotutil.Shape(i)}
			if err := addSeries(p, pts, st, latencyFloor); err != nil {
				return nil, err
			}
		}
	}
	rateAxis(&p.X, rs)
	logAxis(&p.Y, latencyFloor)
	return p, nil
}
