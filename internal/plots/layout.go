package plots

import (
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
// tile c) goes: right of the data area, level with its top, or under the
// panel from the data area's left edge.
func (s legendStrip) legendArea(c, area draw.Canvas, data vg.Rectangle) draw.Canvas {
	r := c.Rectangle
	if s.right {
		r.Min.X, r.Min.Y, r.Max.Y = area.Max.X+legendPad, data.Min.Y, data.Max.Y
	} else {
		r.Min.X, r.Max.Y = data.Min.X, c.Min.Y+s.height
	}
	return draw.Canvas{Canvas: c.Canvas, Rectangle: r}
}

// drawPanel draws p into tile c (as plot.Align placed it) with its legend
// in the strip.
func (s legendStrip) drawPanel(p *plot.Plot, c draw.Canvas) {
	leg := p.Legend
	p.Legend = plot.NewLegend() // p.Draw draws none
	defer func() { p.Legend = leg }()
	area := s.plotArea(c)
	p.Draw(area)
	if s.space() > 0 {
		leg.Top, leg.Left, leg.XOffs, leg.YOffs = true, true, 0, 0
		leg.Draw(s.legendArea(c, area, p.DataCanvas(area).Rectangle))
	}
}

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
