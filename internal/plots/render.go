// Package plots draws the figures of a bench run with gonum.org/v1/plot
// (pure Go, PNG and SVG from the same code, no cgo or external tool on the
// CI machine).
//
// Every figure plots summaries, never raw samples: medians across
// repetitions with min–max bars, HdrHistogram percentiles, and queue
// readings bucketed by time. Log axes get explicit positive minimums,
// because gonum's LogScale panics on values ≤ 0.
package plots

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Tile size of one panel; PNGs are drawn at vgimg.DefaultDPI (96), so a
// panel is 672×432 pixels.
const (
	TileWidth  = 7 * vg.Inch
	TileHeight = 4.5 * vg.Inch
)

// figure is a grid of panels written as NAME.png and NAME.svg.
type figure struct {
	name string
	grid [][]*plot.Plot
	// placed is where the last save put each panel's parts, row by row.
	placed []placed
}

func (f *figure) write(dir string) ([]string, error) {
	rows, cols := len(f.grid), len(f.grid[0])
	w, h := vg.Length(cols)*TileWidth, vg.Length(rows)*TileHeight
	png := filepath.Join(dir, f.name+".png")
	svg := filepath.Join(dir, f.name+".svg")
	err := f.save(png, vgimg.PngCanvas{Canvas: vgimg.New(w, h)}, w, h)
	if err == nil {
		err = f.save(svg, vgsvg.New(w, h), w, h)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return []string{png, svg}, nil
}

func (f *figure) save(path string, c interface {
	vg.CanvasSizer
	io.WriterTo
}, w, h vg.Length) error {
	f.draw(draw.New(c), w)
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// draw lays the panels out on dc (w wide) and draws them: titles wrapped
// to their panel, y labels and legends placed by layout.go, panels
// aligned by plot.Align.
func (f *figure) draw(dc draw.Canvas, w vg.Length) {
	rows, cols := len(f.grid), len(f.grid[0])
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 6,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 3}
	tileW := (w-tiles.PadLeft-tiles.PadRight)/vg.Length(cols) - tiles.PadX
	strip := stripFor(f.grid, tileW)
	titleW := tileW
	if strip.right {
		titleW -= strip.space()
	}
	yLabels := make([][]string, rows)
	for i, row := range f.grid {
		yLabels[i] = make([]string, len(row))
		for j, p := range row {
			if p != nil {
				p.Title.Text = wrapTitle(p.Title.Text, p.Title.TextStyle, titleW-yLabelWidth(p, p.Y.Label.Text))
				yLabels[i][j], p.Y.Label.Text = p.Y.Label.Text, ""
			}
		}
	}
	canvases := plot.Align(f.grid, tiles, dc)
	f.placed = f.placed[:0]
	for i, row := range f.grid {
		for j, p := range row {
			if p != nil {
				f.placed = append(f.placed, strip.drawPanel(p, canvases[i][j], yLabels[i][j]))
				p.Y.Label.Text = yLabels[i][j] // the next format draws it again
			}
		}
	}
}

// point is a median with its min–max range.
type point struct{ x, y, lo, hi float64 }

// spread summarises values as median, min and max.
func spread(x float64, vs []float64) point {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return point{x, med, s[0], s[n-1]}
}

type style struct {
	label  string
	color  color.Color
	dashes []vg.Length
	shape  draw.GlyphDrawer
}

func styleN(i int, label string) style {
	return style{label, plotutil.Color(i), nil, plotutil.Shape(i)}
}

// addSeries draws pts as a line with points and, where the range is not
// empty, min–max bars. floor clamps values for a log axis (0 for linear).
func addSeries(p *plot.Plot, pts []point, st style, floor float64) error {
	if len(pts) == 0 {
		return nil
	}
	xys := make(plotter.XYs, len(pts))
	errs := make(plotter.YErrors, len(pts))
	bars := false
	for i, pt := range pts {
		y, lo, hi := max(pt.y, floor), max(pt.lo, floor), max(pt.hi, floor)
		xys[i] = plotter.XY{X: pt.x, Y: y}
		errs[i].Low, errs[i].High = y-lo, hi-y
		bars = bars || hi > lo
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Color, line.Dashes = st.color, st.dashes
	line.Width = vg.Points(1.5)
	points.Color, points.Shape = st.color, st.shape
	p.Add(line, points)
	if bars {
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{xys, errs})
		if err != nil {
			return err
		}
		eb.Color = st.color
		p.Add(eb)
	}
	if st.label != "" {
		p.Legend.Add(st.label, line, points)
	}
	return nil
}

// newPlot is a panel with a grid, title and axis labels.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	return p
}

// rateAxis makes x a log axis of offered rates with a tick at each rate of
// the sweep, padded so a single rate still has a range.
func rateAxis(ax *plot.Axis, rates []int) {
	lo, hi := float64(slices.Min(rates)), float64(slices.Max(rates))
	ax.Scale = plot.LogScale{}
	ax.Min, ax.Max = lo/1.25, hi*1.25
	var ticks []plot.Tick
	for _, r := range rates {
		ticks = append(ticks, plot.Tick{Value: float64(r), Label: rateLabel(float64(r))})
	}
	ax.Tick.Marker = plot.ConstantTicks(ticks)
}

// rateLabel writes 2000 as "2k" and 1500000 as "1.5M".
func rateLabel(r float64) string {
	switch {
	case r >= 1e6:
		return strconv.FormatFloat(r/1e6, 'g', 3, 64) + "M"
	case r >= 1e3:
		return strconv.FormatFloat(r/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(r, 'g', 3, 64)
}

// logAxis makes ax logarithmic over the data it already holds, with a
// positive minimum, at least a factor 4 of range, a margin of a fifth
// either side (the legend is outside the data: layout.go) and readable
// ticks.
func logAxis(ax *plot.Axis, floor float64) {
	ax.Scale = plot.LogScale{}
	ax.Min = max(ax.Min, floor)
	if !(ax.Max > ax.Min) || math.IsInf(ax.Max, 0) {
		ax.Max = ax.Min
	}
	if ax.Max/ax.Min < 4 {
		mid := math.Sqrt(ax.Min * ax.Max)
		ax.Min, ax.Max = max(mid/2, floor), mid*2
	}
	ax.Min, ax.Max = ax.Min/1.2, ax.Max*1.2
	ax.Tick.Marker = logTicks{}
}

// logTicks labels 1-2-5 steps per decade over up to four decades, every
// integer under one decade, and powers of ten (every other one beyond
// eight decades) over wider ranges, so that no axis holds more than about
// a dozen labels: plot.LogTicks labels only powers of ten and leaves a
// narrow axis unlabelled, and 1-2-5 over eight decades (a zero latency
// on the 1 ns floor) packs the labels into each other.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	steps, every := logLabelSteps(hi / lo)
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for m := 1.0; m < 10; m++ {
			v := m * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if slices.Contains(steps, m) && int(e)%every == 0 {
				t.Label = strconv.FormatFloat(v, 'f', max(0, -int(e)), 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// logLabelSteps is which mantissas logTicks labels over a range of ratio
// hi/lo, and in which decades (every n-th power of ten).
func logLabelSteps(ratio float64) (mantissas []float64, every int) {
	switch decades := math.Log10(ratio); {
	case decades < 1:
		return []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1
	case decades <= 4:
		return []float64{1, 2, 5}, 1
	case decades <= 8:
		return []float64{1}, 1
	}
	return []float64{1}, 2
}
