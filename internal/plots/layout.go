package plots

import (
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Layout of a panel: gonum draws a legend inside the data area, where it
// hides lines and runs into the title; here it goes in a strip of its
// own beside the data (right) or, when its entries are too wide for
// that, under the panel, and titles wrap to the panel's width.

// legendPad is the space between the data area and the legend strip.
const legendPad = 3 * vg.Millimeter

// maxRightLegend is the largest share of a tile's width a legend strip on
// the right may take; a wider legend goes under the panel.
const maxRightLegend = 0.3

// legendStrip is where every panel of a figure puts its legend: one size
// for all panels, so that aligned panels stay aligned.
type legendStrip struct {
	right         bool
	width, height vg.Length // of the widest and tallest legend
}

// stripFor measures the panels' legends for tiles of width tileW.
func stripFor(grid [][]*plot.Plot, tileW vg.Length) legendStrip {
	var s legendStrip
	for _, row := range grid {
		for _, p := range row {
			if p == nil {
				continue
			}
			r := p.Legend.Rectangle(draw.Canvas{})
			s.width = max(s.width, r.Size().X)
			s.height = max(s.height, r.Size().Y)
		}
	}
	s.right = s.width <= vg.Length(maxRightLegend)*tileW
	return s
}

// space is how much of a tile the strip takes: across for a right strip,
// down for one underneath; 0 with no legend.
func (s legendStrip) space() vg.Length {
	switch {
	case s.width == 0:
		return 0
	case s.right:
		return s.width + legendPad
	}
	return s.height + legendPad
}

// plotArea is the part of tile c the panel itself is drawn in.
func (s legendStrip) plotArea(c draw.Canvas) draw.Canvas {
	if s.right {
		return draw.Crop(c, 0, -s.space(), 0, 0)
	}
	return draw.Crop(c, 0, 0, s.space(), 0)
}

// legendArea is where the legend of a panel drawn in area (plotArea of
// tile c) goes: right of the data area, level with its top (the strip
// was taken from the area, so it fits), or under the panel from the data
// area's left edge.
func (s legendStrip) legendArea(c, area draw.Canvas, data vg.Rectangle) draw.Canvas {
	r := c.Rectangle
	if s.right {
		r.Min.X, r.Min.Y, r.Max.Y = data.Max.X+legendPad, data.Min.Y, data.Max.Y
	} else {
		r.Min.X, r.Max.Y = data.Min.X, c.Min.Y+s.height
	}
	return draw.Canvas{Canvas: c.Canvas, Rectangle: r}
}

// placed is where drawPanel put a panel's parts, for the layout's tests.
type placed struct {
	tile, data, legend, title vg.Rectangle
}

// drawPanel draws p into tile c (as plot.Align placed it, without its y
// label: see yLabelWidth) with its legend in the strip and yLabel left of
// the y axis, and says where each part went.
func (s legendStrip) drawPanel(p *plot.Plot, c draw.Canvas, yLabel string) placed {
	leg := p.Legend
	p.Legend = plot.NewLegend() // p.Draw draws none
	defer func() { p.Legend = leg }()
	area := s.plotArea(c)
	w := yLabelWidth(p, yLabel)
	inner := draw.Crop(area, w, 0, 0, 0)
	p.Draw(inner)
	out := placed{tile: c.Rectangle, data: p.DataCanvas(inner).Rectangle}
	if p.Title.Text != "" {
		size := p.Title.TextStyle.Rectangle(p.Title.Text).Size()
		mid := (inner.Min.X + inner.Max.X) / 2
		out.title = vg.Rectangle{Min: vg.Point{X: mid - size.X/2, Y: inner.Max.Y - size.Y}, Max: vg.Point{X: mid + size.X/2, Y: inner.Max.Y}}
	}
	if yLabel != "" {
		sty := p.Y.Label.TextStyle
		sty.Rotation += math.Pi / 2
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
		x := area.Min.X + p.Y.Label.TextStyle.Height(yLabel)/2 // the line's middle, the gap right of it
		c.FillText(sty, vg.Point{X: x, Y: (out.data.Min.Y + out.data.Max.Y) / 2}, yLabel)
	}
	if s.space() > 0 {
		leg.Top, leg.Left, leg.XOffs, leg.YOffs = true, true, 0, 0
		lc := s.legendArea(c, area, out.data)
		leg.Draw(lc)
		out.legend = leg.Rectangle(lc)
	}
	return out
}

// yLabelWidth is the margin a y label takes left of the axis. The label
// is drawn here rather than by gonum, which places its glyph box at the
// data midpoint, near the top on a log axis, and so leaves a band of
// empty space under the title of every log panel.
func yLabelWidth(p *plot.Plot, label string) vg.Length {
	if label == "" {
		return 0
	}
	return p.Y.Label.TextStyle.Height(label) + max(p.Y.Label.Padding, yLabelGap)
}

// yLabelGap is the least space between a y label and its tick labels.
const yLabelGap = 2 * vg.Millimeter

// wrapTitle breaks each line of title that is wider than width at the
// last "; ", ", " or space that keeps it within width, so no title runs
// past its panel or into its neighbour's.
func wrapTitle(title string, sty text.Style, width vg.Length) string {
	var out []string
	for _, line := range strings.Split(title, "\n") {
		for sty.Width(line) > width {
			cut := breakAt(line, sty, width)
			if cut <= 0 {
				break // one word wider than the panel: nothing to break
			}
			out = append(out, strings.TrimRight(line[:cut], " "))
			line = strings.TrimLeft(line[cut:], " ")
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// breakAt is the index after the last separator of line at which the
// head fits width: a "; " or ", " where one fits, else a space; 0 if none.
func breakAt(line string, sty text.Style, width vg.Length) int {
	best := 0
	for _, sep := range []string{"; ", ", ", " "} {
		for i := 0; i < len(line); {
			j := strings.Index(line[i:], sep)
			if j < 0 {
				break
			}
			end := i + j + len(sep)
			if sty.Width(strings.TrimRight(line[:end], " ")) > width {
				break
			}
			best, i = end, end
		}
		if best > 0 {
			return best
		}
	}
	return best
}
