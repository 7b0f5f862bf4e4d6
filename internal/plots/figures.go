package plots

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/imp2/imp2/internal/results"
)

// WriteAll writes the figures of run into dir as PNG and SVG and returns
// the paths: latency percentiles vs offered rate, the percentile spectrum
// per rate, drop ratio vs offered rate per receive buffer, receive-queue
// occupancy at the knee, and achieved vs offered rate. A figure with no
// data in the run (no latency histograms, no queue readings) is left out.
// dir is created if needed.
func WriteAll(run *results.Run, dir string) ([]string, error) {
	var figs []*figure
	for _, build := range []func(*results.Run) (*figure, error){latencyFigure, spectrumFigure, dropFigure, queueFigure, rateFigure} {
		f, err := build(run)
		if err != nil {
			return nil, err
		}
		if f != nil {
			figs = append(figs, f)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range figs {
		p, err := f.write(dir)
		if err != nil {
			return paths, err
		}
		paths = append(paths, p...)
	}
	return paths, nil
}

// combo is one (receive buffer, consumer delay) series of the sweep.
type combo struct {
	rcvbuf int
	delay  time.Duration
}

func (c combo) String() string {
	return fmt.Sprintf("rcvbuf %s, consumer delay %s", bytesLabel(int64(c.rcvbuf)), delayLabel(c.delay))
}

func delayLabel(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

func bytesLabel(b int64) string {
	if b >= 1<<20 && b%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	if b >= 1<<10 && b%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}

// combos lists the sweep's series in delay, then buffer order.
func combos(run *results.Run) []combo {
	var cs []combo
	for i := range run.Steps {
		c := combo{run.Steps[i].RcvBuf, run.Steps[i].ConsumerDelay}
		if !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	sortCombos(cs)
	return cs
}

// sortCombos orders series by delay, then buffer.
func sortCombos(cs []combo) {
	slices.SortFunc(cs, func(a, b combo) int {
		if a.delay != b.delay {
			return int(a.delay - b.delay)
		}
		return a.rcvbuf - b.rcvbuf
	})
}

// stepsOf returns the steps of c by increasing rate.
func stepsOf(run *results.Run, c combo) []*results.Step {
	var st []*results.Step
	for i := range run.Steps {
		if s := &run.Steps[i]; s.RcvBuf == c.rcvbuf && s.ConsumerDelay == c.delay {
			st = append(st, s)
		}
	}
	slices.SortFunc(st, func(a, b *results.Step) int { return a.RatePPS - b.RatePPS })
	return st
}

func rates(run *results.Run) []int {
	var rs []int
	for i := range run.Steps {
		if !slices.Contains(rs, run.Steps[i].RatePPS) {
			rs = append(rs, run.Steps[i].RatePPS)
		}
	}
	slices.Sort(rs)
	return rs
}

func sourceLabel(run *results.Run) string {
	s := run.Source.Kind
	if run.Source.Emulated {
		s += " (user-space emulation)"
	}
	if run.Environment.InVM {
		s += ", in VM (emulated CPU: timings are not hardware timings)"
	}
	if d := run.Describe(); d != "" {
		s += "\n" + d
	}
	return s
}

// latencyKind is one of the two latencies a sample may carry.
type latencyKind struct {
	title string
	get   func(*results.Sample) *results.Latency
}

var latencyKinds = []latencyKind{
	{"Unicast latency (kernel timestamp → consumer)", func(s *results.Sample) *results.Latency { return s.Unicast }},
	{"End-to-end latency (scheduled send → consumer)", func(s *results.Sample) *results.Latency { return s.EndToEnd }},
}

// kindsIn returns the latency kinds for which some sample holds events.
func kindsIn(run *results.Run) []latencyKind {
	var ks []latencyKind
	for _, k := range latencyKinds {
		found := false
		for i := range run.Steps {
			for j := range run.Steps[i].Samples {
				if l := k.get(&run.Steps[i].Samples[j]); l != nil && l.Count > 0 {
					found = true
				}
			}
		}
		if found {
			ks = append(ks, k)
		}
	}
	return ks
}

var percentiles = []struct {
	label string
	get   func(*results.Latency) int64
}{
	{"p50", func(l *results.Latency) int64 { return l.P50 }},
	{"p90", func(l *results.Latency) int64 { return l.P90 }},
	{"p99", func(l *results.Latency) int64 { return l.P99 }},
	{"p99.9", func(l *results.Latency) int64 { return l.P999 }},
}

// perStep is one value per sample of a step (ok false: the sample has none).
type perStep func(*results.Step, *results.Sample) (float64, bool)

// seriesOf summarises f over each step's samples, at x = offered rate.
func seriesOf(steps []*results.Step, f perStep) []point {
	var pts []point
	for _, st := range steps {
		var vs []float64
		for j := range st.Samples {
			if v, ok := f(st, &st.Samples[j]); ok {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			pts = append(pts, spread(float64(st.RatePPS), vs))
		}
	}
	return pts
}

func repsNote(run *results.Run) string {
	if run.Params.Repetitions == 1 {
		return "one repetition"
	}
	return fmt.Sprintf("median of %d repetitions, bars min–max", run.Params.Repetitions)
}

func latencyFigure(run *results.Run) (*figure, error) {
	kinds := kindsIn(run)
	if len(kinds) == 0 {
		return nil, nil
	}
	f := &figure{name: "latency"}
	for _, c := range combos(run) {
		var row []*plot.Plot
		for _, k := range kinds {
			var series []latencySeries
			for i, pc := range percentiles {
				pts := seriesOf(stepsOf(run, c), func(_ *results.Step, s *results.Sample) (float64, bool) {
					l := k.get(s)
					if l == nil || l.Count == 0 {
						return 0, false
					}
					return float64(pc.get(l)), true
				})
				series = append(series, latencySeries{pts, styleN(i, pc.label)})
			}
			u := latencyUnitOf(series)
			p := newPlot(fmt.Sprintf("%s vs offered rate\n%s; %s\n%s", k.title, sourceLabel(run), c, repsNote(run)),
				"offered rate (packets/s, log scale)", "latency ("+u.name+", log scale)")
			if err := addLatency(p, series, u); err != nil {
				return nil, err
			}
			rateAxis(&p.X, rates(run))
			logAxis(&p.Y, u.floor())
			row = append(row, p)
		}
		f.grid = append(f.grid, row)
	}
	return f, nil
}

// spectrumTicks labels x = 1/(1-q) with the percentile q.
type spectrumTicks struct{}

func (spectrumTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := 0.0; math.Pow(10, e) <= hi; e++ {
		v := math.Pow(10, e)
		if v < lo {
			continue
		}
		label := "0%"
		if e > 0 {
			label = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.*f", int(e), 100*(1-1/v)), "0"), ".") + "%"
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

// spectrum is a step's latency distribution (all repetitions merged) as
// HdrHistogram's percentile spectrum: x = 1/(1-q), y = latency in ns (at
// least 1), from
// the histogram's own percentile ticks (about a hundred points) and ending
// at the maximum, placed at q = 1-1/count.
func spectrum(st *results.Step, k latencyKind) (plotter.XYs, error) {
	var merged *hdrhistogram.Histogram
	for j := range st.Samples {
		l := k.get(&st.Samples[j])
		if l == nil || l.Count == 0 {
			continue
		}
		h, err := l.Histogram()
		if err != nil {
			return nil, err
		}
		if merged == nil {
			merged = h
		} else {
			merged.Merge(h)
		}
	}
	if merged == nil {
		return nil, nil
	}
	n := float64(merged.TotalCount())
	var xys plotter.XYs
	for _, b := range merged.CumulativeDistributionWithTicks(5) {
		x := 1 / (1 - b.Quantile/100)
		if x >= n || math.IsInf(x, 0) {
			break
		}
		xys = append(xys, plotter.XY{X: x, Y: max(float64(b.ValueAt), 1)})
	}
	return append(xys, plotter.XY{X: max(n, 2), Y: max(float64(merged.Max()), 1)}), nil
}

func spectrumFigure(run *results.Run) (*figure, error) {
	kinds := kindsIn(run)
	if len(kinds) == 0 {
		return nil, nil
	}
	f := &figure{name: "spectrum"}
	for _, c := range combos(run) {
		var row []*plot.Plot
		for _, k := range kinds {
			p, err := spectrumPanel(run, c, k)
			if err != nil {
				return nil, err
			}
			row = append(row, p)
		}
		f.grid = append(f.grid, row)
	}
	return f, nil
}

// spectrumPanel is the spectrum of kind k at each rate of series c, in the
// unit the largest latency suits.
func spectrumPanel(run *results.Run, c combo, k latencyKind) (*plot.Plot, error) {
	var lines []plotter.XYs
	var labels []string
	top := 0.0
	for _, st := range stepsOf(run, c) {
		xys, err := spectrum(st, k)
		if err != nil {
			return nil, fmt.Errorf("spectrum at %s: %w", st.Key(), err)
		}
		if len(xys) == 0 {
			continue
		}
		for _, xy := range xys {
			top = max(top, xy.Y)
		}
		lines, labels = append(lines, xys), append(labels, rateLabel(float64(st.RatePPS))+" pps")
	}
	u := latencyUnit(top)
	p := newPlot(fmt.Sprintf("%s\npercentile spectrum per offered rate, all repetitions merged\n%s; %s", k.title, sourceLabel(run), c),
		"percentile (log scale of 1/(1−q))", "latency ("+u.name+", log scale)")
	for i, xys := range lines {
		for j := range xys {
			xys[j].Y = max(xys[j].Y/u.ns, u.floor())
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = colorN(i), vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(labels[i], l)
	}
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, spectrumTicks{}
	p.X.Min = 1
	p.X.Max = max(p.X.Max, 10)
	logAxis(&p.Y, u.floor())
	return p, nil
}

func colorN(i int) color.Color { return styleN(i, "").color }

func dropFigure(run *results.Run) (*figure, error) {
	f := &figure{name: "drops"}
	var delays []time.Duration
	for _, c := range combos(run) {
		if !slices.Contains(delays, c.delay) {
			delays = append(delays, c.delay)
		}
	}
	for _, d := range delays {
		p := newPlot(fmt.Sprintf("Netlink drop ratio vs offered rate, one line per receive buffer\n%s; consumer delay %s\n%s", sourceLabel(run), delayLabel(d), repsNote(run)),
			"offered rate (packets/s, log scale)", "dropped (% of events sent by the hook)")
		i := 0
		for _, c := range combos(run) {
			if c.delay != d {
				continue
			}
			pts := seriesOf(stepsOf(run, c), func(_ *results.Step, s *results.Sample) (float64, bool) { return 100 * s.DropRatio(), true })
			if err := addSeries(p, pts, styleN(i, "rcvbuf "+bytesLabel(int64(c.rcvbuf))), 0); err != nil {
				return nil, err
			}
			i++
		}
		rateAxis(&p.X, rates(run))
		p.Y.Min, p.Y.Max = 0, min(100, max(1, p.Y.Max*1.1))
		p.Y.Tick.Marker = linearTicks{}
		f.grid = append(f.grid, []*plot.Plot{p})
	}
	return f, nil
}

// knee is the first step of c (by rate) with drops, else the highest rate,
// and its sample with the most drops (the clearest overrun cycles).
func knee(run *results.Run, c combo) (*results.Step, *results.Sample, string) {
	steps := stepsOf(run, c)
	st, why := steps[len(steps)-1], "no drops: highest rate"
	for _, s := range steps {
		if slices.ContainsFunc(s.Samples, func(sm results.Sample) bool { return sm.Dropped() > 0 }) {
			st, why = s, "first step with drops"
			break
		}
	}
	best := &st.Samples[0]
	for j := range st.Samples {
		if st.Samples[j].Dropped() > best.Dropped() {
			best = &st.Samples[j]
		}
	}
	return st, best, why
}

// queueBuckets is the most points a queue trace is drawn with.
const queueBuckets = 400

func queueFigure(run *results.Run) (*figure, error) {
	f := &figure{name: "queue"}
	for _, c := range combos(run) {
		st, sm, why := knee(run, c)
		qs := sm.Queue.Samples
		if len(qs) == 0 {
			continue
		}
		p := newPlot(fmt.Sprintf("Receive-queue occupancy at the knee: %s pps (%s), repetition %d of %d\n%s\n%s; %d dropped; queue %s",
			rateLabel(float64(st.RatePPS)), why, sm.Rep+1, run.Params.Repetitions, sourceLabel(run), c, sm.Dropped(), queueMethod(&sm.Queue)),
			"time since step start (ms)", "queued bytes (KiB)")
		if err := addQueue(p, &sm.Queue); err != nil {
			return nil, err
		}
		p.Y.Min = 0
		p.Y.Max = max(p.Y.Max*1.1, 1)
		f.grid = append(f.grid, []*plot.Plot{p})
	}
	if len(f.grid) == 0 {
		return nil, nil
	}
	sameTimeAxis(f.grid)
	return f, nil
}

// sameTimeAxis puts the queue panels on one time axis: from the step's
// start (0) to the latest reading of any, with linearTicks on both axes,
// so the panels read against each other.
func sameTimeAxis(grid [][]*plot.Plot) {
	end := 0.0
	for _, row := range grid {
		end = max(end, row[0].X.Max)
	}
	for _, row := range grid {
		p := row[0]
		p.X.Min, p.X.Max = 0, end
		p.X.Tick.Marker, p.Y.Tick.Marker = linearTicks{}, linearTicks{}
	}
}

func rateFigure(run *results.Run) (*figure, error) {
	p := newPlot("Achieved vs offered rate\n"+sourceLabel(run)+"\n"+repsNote(run), "offered rate (packets/s, log scale)", "rate (packets/s, log scale)")
	rs := rates(run)
	ideal, err := plotter.NewLine(plotter.XYs{{X: float64(rs[0]) / 1.25, Y: float64(rs[0]) / 1.25}, {X: float64(rs[len(rs)-1]) * 1.25, Y: float64(rs[len(rs)-1]) * 1.25}})
	if err != nil {
		return nil, err
	}
	ideal.Color, ideal.Dashes = color.Gray{Y: 120}, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(ideal)
	p.Legend.Add("y = x (everything offered)", ideal)
	// The generator's rate does not depend on the consumer: pool all steps
	// at a rate.
	var all []*results.Step
	for i := range run.Steps {
		all = append(all, &run.Steps[i])
	}
	sent := poolByRate(all, func(_ *results.Step, s *results.Sample) (float64, bool) { return s.AchievedPPS, true })
	if err := addSeries(p, sent, styleN(0, "sent by the flood generator"), 1); err != nil {
		return nil, err
	}
	for i, c := range combos(run) {
		pts := seriesOf(stepsOf(run, c), func(_ *results.Step, s *results.Sample) (float64, bool) {
			return float64(s.Received) / s.Duration.Seconds(), true
		})
		if err := addSeries(p, pts, styleN(i+1, "delivered to the consumer, "+c.String()), 1); err != nil {
			return nil, err
		}
	}
	rateAxis(&p.X, rs)
	logAxis(&p.Y, 1)
	return &figure{name: "rate", grid: [][]*plot.Plot{{p}}}, nil
}

// poolByRate summarises f over all samples of all steps at each rate.
func poolByRate(steps []*results.Step, f perStep) []point {
	byRate := map[int][]float64{}
	var rs []int
	for _, st := range steps {
		for j := range st.Samples {
			if v, ok := f(st, &st.Samples[j]); ok {
				if _, seen := byRate[st.RatePPS]; !seen {
					rs = append(rs, st.RatePPS)
				}
				byRate[st.RatePPS] = append(byRate[st.RatePPS], v)
			}
		}
	}
	slices.Sort(rs)
	var pts []point
	for _, r := range rs {
		pts = append(pts, spread(float64(r), byRate[r]))
	}
	return pts
}
