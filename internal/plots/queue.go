package plots

import (
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/imp2/imp2/internal/results"
)

// queueMethod names how a queue trace was taken, for the figure's title;
// files from before the choice were sampled.
func queueMethod(q *results.Queue) string {
	if q.Method == "" {
		return results.QueueSampled
	}
	return q.Method
}

// addQueue draws a queue trace, the receive buffer limit and, for an
// exact trace, where the events were lost. The queue holds each point's
// value until the next point, so a bucket spans the value it starts with
// and its own points: a full queue the reader leaves alone for 100 ms stays
// full in the figure instead of sloping down to its drain. An exact trace
// is drawn as the highest and the lowest value of each bucket, so that a
// fill to the limit and the drain to empty that follows both show; a
// sampled one as the highest reading.
func addQueue(p *plot.Plot, q *results.Queue) error {
	qs := q.Samples
	span := qs[len(qs)-1].Offset + 1
	width := max(span/queueBuckets, 1)
	var hi, lo plotter.XYs
	held := qs[0].RmemAlloc
	for i, b := 0, qs[0].Offset/width; i < len(qs); b++ {
		top, bottom := held, held
		if b == qs[i].Offset/width {
			top, bottom = qs[i].RmemAlloc, qs[i].RmemAlloc
			if i > 0 {
				top, bottom = max(top, held), min(bottom, held)
			}
		}
		for ; i < len(qs) && qs[i].Offset/width == b; i++ {
			top, bottom = max(top, qs[i].RmemAlloc), min(bottom, qs[i].RmemAlloc)
			held = qs[i].RmemAlloc
		}
		x := float64(b*width) / 1e6
		hi = append(hi, plotter.XY{X: x, Y: float64(top) / 1024})
		lo = append(lo, plotter.XY{X: x, Y: float64(bottom) / 1024})
	}
	exact := q.Method == results.QueueExact
	label := "queued bytes, SO_MEMINFO rmem_alloc (highest per bucket)"
	if exact {
		label = "queued bytes, exact (highest per bucket)"
	}
	if err := addLine(p, hi, colorN(0), label); err != nil {
		return err
	}
	if exact {
		if err := addLine(p, lo, colorN(1), "queued bytes, exact (lowest per bucket)"); err != nil {
			return err
		}
		if err := addGaps(p, q); err != nil {
			return err
		}
	}
	if q.RcvBuf > 0 {
		y := float64(q.RcvBuf) / 1024
		limit, err := plotter.NewLine(plotter.XYs{{X: hi[0].X, Y: y}, {X: hi[len(hi)-1].X, Y: y}})
		if err != nil {
			return err
		}
		limit.Color, limit.Dashes = color.Black, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(limit)
		p.Legend.Add(fmt.Sprintf("receive buffer limit (%s effective)", bytesLabel(q.RcvBuf)), limit)
	}
	return nil
}

func addLine(p *plot.Plot, xys plotter.XYs, c color.Color, label string) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color, l.Width = c, vg.Points(1)
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}

// addGaps marks each sequence gap: a bar at the occupancy that refused
// its first event, spanning from the event before the gap to the one after
// it, and a dot at that first refusal. The refusals lie inside the bar;
// without NETLINK_NO_ENOBUFS every event is refused from the first until
// the reader has emptied the queue (the congested period), so the bar
// outlasts the drain by the wait for the next event.
func addGaps(p *plot.Plot, q *results.Queue) error {
	if len(q.Gaps) == 0 {
		return nil
	}
	red := color.RGBA{R: 200, A: 255}
	var firsts plotter.XYs
	var lost int64
	for i, g := range q.Gaps {
		y := float64(g.DropRmem) / 1024
		bar, err := plotter.NewLine(plotter.XYs{{X: float64(g.From) / 1e6, Y: y}, {X: float64(g.To) / 1e6, Y: y}})
		if err != nil {
			return err
		}
		bar.Color, bar.Width = red, vg.Points(3)
		p.Add(bar)
		if i == 0 {
			p.Legend.Add("sequence gap: from the queued event before to the one after (refusals inside)", bar)
		}
		// At a steady rate the first refusal comes one event interval
		// after the last event queued.
		first := g.From + (g.To-g.From)/time.Duration(1+g.Events)
		firsts = append(firsts, plotter.XY{X: float64(first) / 1e6, Y: y})
		lost += g.Events
	}
	sc, err := plotter.NewScatter(firsts)
	if err != nil {
		return err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: red, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
	p.Add(sc)
	p.Legend.Add(fmt.Sprintf("first refusal of each gap at its sk_rmem_alloc (%d gaps, %d events lost)", len(q.Gaps), lost), sc)
	return nil
}
