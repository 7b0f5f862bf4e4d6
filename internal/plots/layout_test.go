package plots

import (
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/imp2/imp2/internal/results"
)

func TestLatencyUnit(t *testing.T) {
	for _, tc := range []struct {
		maxNs float64
		want  string
	}{
		{0, "µs"}, {500, "µs"}, {800e3, "µs"}, {9.9e6, "µs"}, // up to 9900 µs
		{10e6, "ms"}, {350e6, "ms"}, {9.9e9, "ms"},
		{10e9, "s"}, {3e11, "s"},
	} {
		if u := latencyUnit(tc.maxNs); u.name != tc.want {
			t.Errorf("latencyUnit(%g ns) = %s, want %s", tc.maxNs, u.name, tc.want)
		}
		// Whatever the unit, the largest value has at most four digits
		// before the point, and the floor is 1 ns.
		u := latencyUnit(tc.maxNs)
		if v := tc.maxNs / u.ns; v >= 1e4 && u.name != "s" {
			t.Errorf("%g ns is %g %s: too many digits", tc.maxNs, v, u.name)
		}
		if got := u.floor() * u.ns; got != 1 {
			t.Errorf("%s floor is %g ns", u.name, got)
		}
	}
}

// labels returns the labelled ticks of m over [lo, hi].
func labels(m plot.Ticker, lo, hi float64) []plot.Tick {
	var ls []plot.Tick
	for _, tk := range m.Ticks(lo, hi) {
		if tk.Label != "" {
			ls = append(ls, tk)
		}
	}
	return ls
}

// TestLinearTicks: 2–6 labels at 1, 2 or 5 times a power of ten, each
// label its value without superfluous decimals (not "250.00").
func TestLinearTicks(t *testing.T) {
	for _, r := range [][2]float64{{0, 260}, {0, 17.6}, {0, 750}, {0, 1}, {0, 100}, {0, 0.03}, {12, 13}, {0, 1e6}} {
		ls := labels(linearTicks{}, r[0], r[1])
		if len(ls) < 2 || len(ls) > maxLinearLabels {
			t.Errorf("%v: %d labels %v", r, len(ls), ls)
			continue
		}
		step := ls[1].Value - ls[0].Value
		m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
		if math.Abs(m-1) > 1e-6 && math.Abs(m-2) > 1e-6 && math.Abs(m-5) > 1e-6 {
			t.Errorf("%v: step %g is not 1, 2 or 5 × 10^k", r, step)
		}
		for _, l := range ls {
			v, err := strconv.ParseFloat(l.Label, 64)
			if err != nil || math.Abs(v-l.Value) > step*1e-6 || (strings.Contains(l.Label, ".") && strings.HasSuffix(l.Label, "0")) {
				t.Errorf("%v: label %q for %g", r, l.Label, l.Value)
			}
		}
	}
}

// TestLogTicks: every range gets between 2 and 12 labels, 1-2-5 where
// they fit.
func TestLogTicks(t *testing.T) {
	for _, r := range [][2]float64{{2, 7}, {0.2, 20}, {0.02, 500}, {1e-6, 50}, {1e-6, 1e6}} {
		ls := labels(logTicks{}, r[0], r[1])
		if len(ls) < 2 || len(ls) > 12 {
			t.Errorf("%v: %d labels: %v", r, len(ls), ls)
		}
	}
	if ls := labels(logTicks{}, 0.2, 20); len(ls) != 7 || ls[1].Label != "0.5" {
		t.Errorf("0.2–20: labels %v, want 0.2 0.5 1 2 5 10 20", ls)
	}
}

func TestWrapTitle(t *testing.T) {
	p := plot.New()
	sty := p.Title.TextStyle
	title := "End-to-end latency (scheduled send → consumer): percentile spectrum per offered rate\nkmod, in VM (emulated CPU: timings are not hardware timings); rcvbuf 16 KiB, consumer delay 0"
	width := 5 * vg.Inch
	got := wrapTitle(title, sty, width)
	for _, line := range strings.Split(got, "\n") {
		if sty.Width(line) > width {
			t.Errorf("line %q is %v wide, over %v", line, sty.Width(line), width)
		}
	}
	if !strings.Contains(got, "timings);\nrcvbuf 16 KiB") {
		t.Errorf("not broken at the \"; \":\n%s", got)
	}
	if strings.ReplaceAll(got, "\n", " ") != strings.ReplaceAll(title, "\n", " ") {
		t.Errorf("wrapping lost or changed words:\n%s", got)
	}
}

// TestFigureLayout draws every figure of the committed runs and checks
// the geometry layout.go placed: legends outside the data area and
// inside their tile, titles within their tile and clear of each other,
// and the queue panels on one time axis from 0.
func TestFigureLayout(t *testing.T) {
	for _, dir := range []string{"default", "nflog"} {
		run, err := results.Read(filepath.Join("..", "..", "results", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, build := range []func(*results.Run) (*figure, error){latencyFigure, spectrumFigure, dropFigure, queueFigure, rateFigure} {
			f, err := build(run)
			if err != nil || f == nil {
				t.Fatalf("%s: %v", dir, err)
			}
			w := vg.Length(len(f.grid[0])) * TileWidth
			f.draw(draw.New(vgimg.New(w, vg.Length(len(f.grid))*TileHeight)), w)
			if n := len(f.grid) * len(f.grid[0]); len(f.placed) != n {
				t.Fatalf("%s/%s: %d panels placed, want %d", dir, f.name, len(f.placed), n)
			}
			checkPlaced(t, dir+"/"+f.name, f.placed)
			if f.name == "queue" {
				for _, row := range f.grid {
					if row[0].X.Min != 0 || row[0].X.Max != f.grid[0][0].X.Max {
						t.Errorf("%s queue panel time axis %g–%g, want 0–%g as the first", dir, row[0].X.Min, row[0].X.Max, f.grid[0][0].X.Max)
					}
				}
			}
			if f.name == "latency" || f.name == "spectrum" {
				if l := f.grid[0][1].Y.Label.Text; !strings.Contains(l, "(ms,") {
					t.Errorf("%s %s: end-to-end latency up to 100s of ms labelled %q, want ms", dir, f.name, l)
				}
			}
		}
	}
}

func checkPlaced(t *testing.T, name string, ps []placed) {
	t.Helper()
	for i, p := range ps {
		if overlaps(p.legend, p.data) {
			t.Errorf("%s panel %d: legend %v overlaps the data %v", name, i, p.legend, p.data)
		}
		if !within(p.legend, p.tile) || !within(p.title, p.tile) {
			t.Errorf("%s panel %d: legend %v or title %v outside the tile %v", name, i, p.legend, p.title, p.tile)
		}
		if overlaps(p.title, p.data) {
			t.Errorf("%s panel %d: title %v runs into the data %v", name, i, p.title, p.data)
		}
		for j, q := range ps[:i] {
			if overlaps(p.title, q.title) || overlaps(p.title, q.data) || overlaps(p.legend, q.data) {
				t.Errorf("%s: panel %d's title or legend runs into panel %d", name, i, j)
			}
		}
	}
}

func overlaps(a, b vg.Rectangle) bool {
	const eps = 0.5 // points of rounding
	return a.Min.X+eps < b.Max.X && b.Min.X+eps < a.Max.X && a.Min.Y+eps < b.Max.Y && b.Min.Y+eps < a.Max.Y
}

func within(a, b vg.Rectangle) bool {
	const eps = 0.5
	return a == vg.Rectangle{} || a.Min.X >= b.Min.X-eps && a.Max.X <= b.Max.X+eps && a.Min.Y >= b.Min.Y-eps && a.Max.Y <= b.Max.Y+eps
}

// TestComparisonCrossSource: two sources are titled and laid out as a
// cross-source comparison; one source as base vs new.
func TestComparisonCrossSource(t *testing.T) {
	var vs []*results.Values
	for _, dir := range []string{"default", "nflog"} {
		in, err := results.ReadInput(filepath.Join("..", "..", "results", dir, results.BenchFileName))
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, in.Values)
	}
	for _, tc := range []struct {
		base, new *results.Values
		want      string
	}{{vs[0], vs[1], "kmod vs nflog (cross-source)"}, {vs[0], vs[0], "base vs new"}} {
		f, err := comparisonFigure(tc.base, tc.new, "a", "b")
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range f.grid {
			for _, p := range row {
				if !strings.Contains(p.Title.Text, tc.want) {
					t.Errorf("title %q, want %q", p.Title.Text, tc.want)
				}
			}
		}
		w := vg.Length(len(f.grid[0])) * TileWidth
		f.draw(draw.New(vgimg.New(w, vg.Length(len(f.grid))*TileHeight)), w)
		checkPlaced(t, "compare", f.placed)
		if l := f.grid[0][0].Y.Label.Text; !strings.Contains(l, "(ms,") {
			t.Errorf("latency up to tens of ms labelled %q, want ms", l)
		}
	}
}

// TestPercentileStyles: in a latency comparison the p50 and p99 lines of
// one side differ in dash and marker, not only in the legend's words, and
// the legend says which line is which.
func TestPercentileStyles(t *testing.T) {
	for _, s := range []side{
		{name: "base a", dash: []vg.Length{vg.Points(5), vg.Points(3)}},
		{name: "new b"},
	} {
		p50, p99 := percentileStyle(s, "p50"), percentileStyle(s, "p99")
		if slices.Equal(p50.dashes, p99.dashes) || p50.shape == p99.shape {
			t.Errorf("%s: p50 and p99 share a line (%v, %v) or a marker (%T)", s.name, p50.dashes, p99.dashes, p50.shape)
		}
		for _, st := range []style{p50, p99} {
			if !strings.Contains(st.label, s.name) || !strings.Contains(st.label, dashName(st.dashes)) {
				t.Errorf("%s: legend %q does not name its side and line (%s)", s.name, st.label, dashName(st.dashes))
			}
		}
	}
	if got := percentileStyle(side{name: "n"}, "p99").label; got != "p99 (dotted, triangles): n" {
		t.Errorf("new side's p99 legend %q", got)
	}
}
