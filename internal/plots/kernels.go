package plots

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/imp2/imp2/internal/results"
)

// WriteKernels writes kernels.png and kernels.svg into dir (created if
// needed): the same sweep on several kernels side by side, one colour per
// kernel (names[i] labels runs[i]). One row per (receive buffer, consumer
// delay) series: achieved and delivered rate, drop ratio and latency
// p50/p99 against offered rate; a last row the burst probe: events held
// and bytes per held event (≈ truesize) against receive buffer. Every
// title says when the runs are emulation.
func WriteKernels(runs []*results.Run, names []string, dir string) ([]string, error) {
	if len(runs) == 0 || len(runs) != len(names) {
		return nil, fmt.Errorf("kernels plot: %d runs and %d names", len(runs), len(names))
	}
	label := kernelsLabel(runs)
	var cs []combo
	var rs []int
	for _, run := range runs {
		for _, c := range combos(run) {
			if !slices.Contains(cs, c) {
				cs = append(cs, c)
			}
		}
		for _, r := range rates(run) {
			if !slices.Contains(rs, r) {
				rs = append(rs, r)
			}
		}
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("kernels plot: the runs have no steps")
	}
	slices.Sort(rs)
	f := &figure{name: "kernels"}
	for _, c := range cs {
		row, err := kernelsRow(runs, names, c, rs, label)
		if err != nil {
			return nil, err
		}
		f.grid = append(f.grid, row)
	}
	row, err := burstRow(runs, names, label)
	if err != nil {
		return nil, err
	}
	if row != nil {
		f.grid = append(f.grid, row)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return f.write(dir)
}

// kernelsLabel is the line of every WriteKernels title that says where
// the runs' numbers come from: qemu guests (emulated CPU) and the
// user-space emulator (source emu) are both emulation, each said.
func kernelsLabel(runs []*results.Run) string {
	var parts []string
	if slices.ContainsFunc(runs, func(r *results.Run) bool { return r.Environment.InVM }) {
		parts = append(parts, "qemu TCG guests, timings are not hardware timings")
	}
	if slices.ContainsFunc(runs, func(r *results.Run) bool { return r.Source.Emulated }) {
		parts = append(parts, "emu is a user-space emulation, not the kernel path")
	}
	if len(parts) == 0 {
		return "on the host"
	}
	return "emulation: " + strings.Join(parts, "; ")
}

// kernelsRow is WriteKernels' row of one series c: achieved and delivered
// rate, drop ratio and, where measured, latency against the offered rates
// rs, one colour per run.
func kernelsRow(runs []*results.Run, names []string, c combo, rs []int, label string) ([]*plot.Plot, error) {
	rate := newPlot("Achieved (solid) and delivered (dashed) rate\n"+c.String()+"\n"+label, "offered rate (packets/s, log scale)", "rate (packets/s, log scale)")
	drops := newPlot("Drop ratio\n"+c.String()+"\n"+label, "offered rate (packets/s, log scale)", "dropped (% of events sent by the hook)")
	lat := newPlot("Unicast latency p50 (solid), p99 (dashed)\n"+c.String()+"\n"+label, "offered rate (packets/s, log scale)", "")
	var latency []latencySeries
	for i, run := range runs {
		steps := stepsOf(run, c)
		achieved := seriesOf(steps, func(_ *results.Step, s *results.Sample) (float64, bool) { return s.AchievedPPS, true })
		delivered := seriesOf(steps, func(_ *results.Step, s *results.Sample) (float64, bool) {
			return float64(s.Received) / s.Duration.Seconds(), s.Duration > 0
		})
		dashed := styleN(i, names[i])
		dashed.label, dashed.dashes = "", []vg.Length{vg.Points(5), vg.Points(3)}
		if err := addSeries(rate, achieved, styleN(i, names[i]), 1); err != nil {
			return nil, err
		}
		if err := addSeries(rate, delivered, dashed, 1); err != nil {
			return nil, err
		}
		if err := addSeries(drops, seriesOf(steps, func(_ *results.Step, s *results.Sample) (float64, bool) { return 100 * s.DropRatio(), true }), styleN(i, names[i]), 0); err != nil {
			return nil, err
		}
		for j, pc := range []int{0, 2} { // p50, p99
			pct := percentiles[pc]
			pts := seriesOf(steps, func(_ *results.Step, s *results.Sample) (float64, bool) {
				if s.Unicast == nil || s.Unicast.Count == 0 {
					return 0, false
				}
				return float64(pct.get(s.Unicast)), true
			})
			st := styleN(i, names[i])
			if j == 1 {
				st = dashed
			}
			if len(pts) > 0 {
				latency = append(latency, latencySeries{pts, st})
			}
		}
	}
	for _, p := range []*plot.Plot{rate, drops, lat} {
		rateAxis(&p.X, rs)
	}
	logAxis(&rate.Y, 1)
	drops.Y.Min, drops.Y.Max = 0, min(100, max(1, drops.Y.Max*1.1))
	drops.Y.Tick.Marker = linearTicks{}
	row := []*plot.Plot{rate, drops, nil}
	if len(latency) > 0 {
		u := latencyUnitOf(latency)
		lat.Y.Label.Text = "latency (" + u.name + ", log scale)"
		if err := addLatency(lat, latency, u); err != nil {
			return nil, err
		}
		logAxis(&lat.Y, u.floor())
		row[2] = lat
	}
	return row, nil
}

// burstRow is WriteKernels' last row: the burst probe's events held and
// bytes per held event against receive buffer; nil if no run probed.
func burstRow(runs []*results.Run, names []string, label string) ([]*plot.Plot, error) {
	held := newPlot("Burst held: events a non-reading consumer holds\n"+label, "receive buffer (KiB, log scale)", "events held (log scale)")
	per := newPlot("Receive-buffer bytes per held event (≈ truesize)\n"+label, "receive buffer (KiB, log scale)", "bytes per event")
	var bufs []int
	for i, run := range runs {
		counts := burstsByBuf(run)
		var hs, bs []point
		for _, rb := range slices.Sorted(maps.Keys(counts)) {
			x := float64(rb) / 1024
			hs = append(hs, spread(x, counts[rb]))
			b := float64(bufferBytes(run, rb)) / slices.Max(counts[rb]) // as kreport.Burst.BytesPerEvent
			bs = append(bs, point{x, b, b, b})
			if !slices.Contains(bufs, rb) {
				bufs = append(bufs, rb)
			}
		}
		if err := addSeries(held, hs, styleN(i, names[i]), 1); err != nil {
			return nil, err
		}
		if err := addSeries(per, bs, styleN(i, names[i]), 0); err != nil {
			return nil, err
		}
	}
	if len(bufs) > 0 {
		slices.Sort(bufs)
		for _, p := range []*plot.Plot{held, per} {
			bufAxis(&p.X, bufs)
		}
		logAxis(&held.Y, 1)
		per.Y.Min, per.Y.Max = 0, per.Y.Max*1.4
		return []*plot.Plot{held, per, nil}, nil
	}
	return nil, nil
}

// burstsByBuf collects the burst probe's counts of run by receive buffer.
func burstsByBuf(run *results.Run) map[int][]float64 {
	out := map[int][]float64{}
	for i := range run.Steps {
		st := &run.Steps[i]
		for j := range st.Samples {
			if h := st.Samples[j].BurstHeld; h != nil && *h > 0 {
				out[st.RcvBuf] = append(out[st.RcvBuf], float64(*h))
			}
		}
	}
	return out
}

// bufferBytes is the buffer run's samples at receive buffer rb had
// (results.Queue.RcvBuf): rb for a socket, the ring's size for the BPF
// peer.
func bufferBytes(run *results.Run, rb int) int {
	for i := range run.Steps {
		if st := &run.Steps[i]; st.RcvBuf == rb {
			for _, s := range st.Samples {
				if s.Queue.RcvBuf > 0 {
					return int(s.Queue.RcvBuf)
				}
			}
		}
	}
	return rb
}

// bufAxis makes x a log axis of receive buffers in KiB with a tick at each.
func bufAxis(ax *plot.Axis, bufs []int) {
	lo, hi := float64(bufs[0])/1024, float64(bufs[len(bufs)-1])/1024
	ax.Scale = plot.LogScale{}
	ax.Min, ax.Max = lo/1.5, hi*1.5
	var ticks []plot.Tick
	for _, b := range bufs {
		ticks = append(ticks, plot.Tick{Value: float64(b) / 1024, Label: strings.TrimSuffix(strconv.FormatFloat(float64(b)/1024, 'f', 1, 64), ".0")})
	}
	ax.Tick.Marker = plot.ConstantTicks(ticks)
}
