package plots

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/imp2/imp2/internal/results"
)

// WriteComparison writes compare.png and compare.svg: base and new side by
// side for each (receive buffer, consumer delay) series they share: p50
// and p99 latency, drop ratio and receive-queue peak against offered rate,
// base dashed in grey, new solid in colour (p99 dotted or dash-dot with
// triangles, percentileStyle). It reads the metric values
// (results.Values), so a bench.txt draws as well as a results.json. Two
// sources are labelled as a cross-source comparison, each side by its
// source. dir is created if needed.
func WriteComparison(base, new *results.Values, baseName, newName, dir string) ([]string, error) {
	f, err := comparisonFigure(base, new, baseName, newName)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return f.write(dir)
}

// comparisonFigure is WriteComparison's figure.
func comparisonFigure(base, new *results.Values, baseName, newName string) (*figure, error) {
	var shared []combo
	newCombos := valueCombos(new)
	for _, c := range valueCombos(base) {
		if slices.Contains(newCombos, c) {
			shared = append(shared, c)
		}
	}
	if len(shared) == 0 {
		return nil, fmt.Errorf("compare plot: %s and %s share no (rcvbuf, delay) series", baseName, newName)
	}
	var rs []int
	for _, vs := range []*results.Values{base, new} {
		for _, st := range vs.Steps {
			if !slices.Contains(rs, st.Key.RatePPS) {
				rs = append(rs, st.Key.RatePPS)
			}
		}
	}
	slices.Sort(rs)
	vs := "base vs new"
	baseLabel, newLabel := "base "+baseName, "new "+newName
	if base.Source.Kind != new.Source.Kind {
		vs = fmt.Sprintf("%s vs %s (cross-source)", base.Source.Kind, new.Source.Kind)
		baseLabel, newLabel = base.Source.Kind+": "+baseName, new.Source.Kind+": "+newName
	}
	baseLabel, newLabel = baseLabel+emulationMark(base), newLabel+emulationMark(new)
	if e := comparisonEmulation(base, new); e != "" {
		vs += "\n" + e
	}
	sides := []side{
		{base, baseLabel, color.Gray{Y: 110}, []vg.Length{vg.Points(5), vg.Points(3)}},
		{new, newLabel, plotutil.Color(0), nil},
	}
	// Latency from the kind both runs carry, unicast first.
	var kind string
	for _, k := range []string{"unicast", "e2e"} {
		if hasMetric(base, "p50-"+k+"-ns") && hasMetric(new, "p50-"+k+"-ns") {
			kind = k
			break
		}
	}
	f := &figure{name: "compare"}
	for _, c := range shared {
		var row []*plot.Plot
		if kind != "" {
			p, err := latencyComparison(kind, vs, sides, c, rs)
			if err != nil {
				return nil, err
			}
			row = append(row, p)
		}
		drops := newPlot("Drop ratio: "+vs+"\n"+c.String(), "offered rate (packets/s, log scale)", "dropped (% of events sent by the hook)")
		peak := newPlot("Receive-queue peak: "+vs+"\n"+c.String(), "offered rate (packets/s, log scale)", "peak rmem_alloc (KiB)")
		for _, s := range sides {
			st := style{s.name, s.col, s.dash, plotutil.Shape(0)}
			if err := addSeries(drops, metricSeries(s.values, c, "drop-ratio", 100), st, 0); err != nil {
				return nil, err
			}
			if err := addSeries(peak, metricSeries(s.values, c, "queue-peak-B", 1.0/1024), st, 0); err != nil {
				return nil, err
			}
		}
		for _, p := range []*plot.Plot{drops, peak} {
			rateAxis(&p.X, rs)
			p.Y.Min, p.Y.Max = 0, max(1, p.Y.Max*1.1)
			p.Y.Tick.Marker = linearTicks{}
		}
		drops.Y.Max = min(drops.Y.Max, 100)
		f.grid = append(f.grid, append(row, drops, peak))
	}
	return f, nil
}

// emulationMark is what a comparison legend adds to a side's name when
// its numbers are emulation, as run plots' titles say (sourceLabel).
func emulationMark(vs *results.Values) string {
	switch {
	case vs.Source.Emulated:
		return " (user-space emulation)"
	case vs.Environment.InVM:
		return " (in VM)"
	}
	return ""
}

// comparisonEmulation is the title line of a comparison whose sides are
// emulation, "" when neither is.
func comparisonEmulation(base, new *results.Values) string {
	var parts []string
	if base.Source.Emulated || new.Source.Emulated {
		parts = append(parts, "emu is a user-space emulation, not the kernel path")
	}
	if base.Environment.InVM || new.Environment.InVM {
		parts = append(parts, "in VM: emulated CPU, timings are not hardware timings")
	}
	if len(parts) == 0 {
		return ""
	}
	return "emulation: " + strings.Join(parts, "; ")
}

// side is one run of a comparison plot, with its legend name and style.
type side struct {
	values *results.Values
	name   string
	col    color.Color
	dash   []vg.Length
}

// valueCombos lists the series of vs in delay, then buffer order.
func valueCombos(vs *results.Values) []combo {
	var cs []combo
	for _, st := range vs.Steps {
		if c := (combo{st.Key.RcvBuf, st.Key.ConsumerDelay}); !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	sortCombos(cs)
	return cs
}

func hasMetric(vs *results.Values, name string) bool {
	for i := range vs.Steps {
		if len(vs.Steps[i].Values(name)) > 0 {
			return true
		}
	}
	return false
}

// metricSeries is the metric name of series c by offered rate, times
// scale: medians with min–max.
func metricSeries(vs *results.Values, c combo, name string, scale float64) []point {
	var steps []*results.StepValues
	for i := range vs.Steps {
		if k := vs.Steps[i].Key; k.RcvBuf == c.rcvbuf && k.ConsumerDelay == c.delay {
			steps = append(steps, &vs.Steps[i])
		}
	}
	slices.SortFunc(steps, func(a, b *results.StepValues) int { return a.Key.RatePPS - b.Key.RatePPS })
	var pts []point
	for _, st := range steps {
		xs := st.Values(name)
		if len(xs) == 0 {
			continue
		}
		for i := range xs {
			xs[i] *= scale
		}
		pts = append(pts, spread(float64(st.Key.RatePPS), xs))
	}
	return pts
}

// percentileStyle is side s's line of percentile pc ("p50" or "p99") in
// a latency comparison. The side gives the colour (base grey, new in
// colour) and p50's line (base dashed, new solid); p99 has a line of its
// own (dotted, or dash-dot for a dashed side) and filled triangles for
// p50's rings, so the two lines of one side tell apart, and the legend
// names the line of each.
func percentileStyle(s side, pc string) style {
	if pc == "p50" {
		return style{fmt.Sprintf("p50 (%s, rings): %s", dashName(s.dash), s.name), s.col, s.dash, plotutil.Shape(0)}
	}
	dash := []vg.Length{vg.Points(1.5), vg.Points(2)} // dotted
	if s.dash != nil {
		dash = []vg.Length{vg.Points(5), vg.Points(2), vg.Points(1.5), vg.Points(2)} // dash-dot
	}
	return style{fmt.Sprintf("%s (%s, triangles): %s", pc, dashName(dash), s.name), s.col, dash, plotutil.Shape(7)}
}

// dashName says a line pattern of percentileStyle in words.
func dashName(d []vg.Length) string {
	switch len(d) {
	case 0:
		return "solid"
	case 4:
		return "dash-dot"
	}
	if d[0] > d[1] {
		return "dashed"
	}
	return "dotted"
}

// latencyComparison is the p50 and p99 latency of kind ("unicast" or
// "e2e") in series c, each side's, against the offered rates rs, in the
// unit the values' range suits.
func latencyComparison(kind, vs string, sides []side, c combo, rs []int) (*plot.Plot, error) {
	title := map[string]string{"unicast": latencyKinds[0].title, "e2e": latencyKinds[1].title}[kind]
	var series []latencySeries
	for _, s := range sides {
		for _, pc := range []string{"p50", "p99"} {
			series = append(series, latencySeries{
				pts:   metricSeries(s.values, c, pc+"-"+kind+"-ns", 1),
				style: percentileStyle(s, pc),
			})
		}
	}
	u := latencyUnitOf(series)
	p := newPlot(fmt.Sprintf("%s: %s\n%s", title, vs, c), "offered rate (packets/s, log scale)", "latency ("+u.name+", log scale)")
	if err := addLatency(p, series, u); err != nil {
		return nil, err
	}
	rateAxis(&p.X, rs)
	logAxis(&p.Y, u.floor())
	return p, nil
}
