package bench

import (
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	barpkg "github.com/imp2/imp2/internal/progress"
	"github.com/imp2/imp2/internal/results"
)

// progress reports the sweep on stderr: a bar with the points done and an
// estimate of the time left, redrawn in place, on a terminal
// (internal/progress); one line per sample otherwise (CI logs, the VM
// console).
type progress struct {
	w     io.Writer
	tty   bool
	bar   *barpkg.Bar // from begin, on a terminal
	total int
	n     int
	t0    time.Time
	key   results.StepKey
}

// In the VM the console is a terminal too, but the host relays it into a
// log: write plain lines there.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: barpkg.IsTerminal(w) && os.Getenv(guestEnv) == ""}
}

func (p *progress) begin(total int) {
	p.total, p.t0 = total, time.Now()
	if p.tty {
		p.bar = barpkg.New(p.w, true) // the clock of the ETA starts now
	}
}

func (p *progress) draw(detail string) {
	p.bar.Draw(barpkg.Status{Done: float64(p.n), Total: float64(p.total), Count: true, Detail: detail})
}

func (p *progress) sample(k results.StepKey, rep int) {
	p.key = k
	p.draw(fmt.Sprintf("%s rep %d", k, rep+1))
}

func (p *progress) done(s *results.Sample) {
	p.n++
	line := fmt.Sprintf("%s rep %d: %.0f pps, %d events, drop ratio %.4f",
		p.key, s.Rep+1, s.AchievedPPS, s.Received, s.DropRatio())
	if !s.Drops.Agree {
		line += " (drop counts disagree: " + s.Drops.Disagreement + ")"
	}
	if p.bar == nil {
		fmt.Fprintf(p.w, "[%d/%d %s] %s\n", p.n, p.total, time.Since(p.t0).Round(time.Second), line)
		return
	}
	p.draw(line)
	if p.n == p.total {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) note(format string, args ...any) {
	p.bar.Clear()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// writeSummary prints one row per step with the medians of its samples.
func writeSummary(w io.Writer, run *results.Run) {
	fmt.Fprintf(w, "imp2-bench %s on %s (%s, %d CPUs", run.Source.Kind, run.Environment.KernelRelease, run.Environment.Machine, run.Environment.CPUs)
	if run.Environment.InVM {
		fmt.Fprint(w, ", inside the VM: emulation timings")
	}
	fmt.Fprintln(w, ")")
	if d := run.Describe(); d != "" {
		fmt.Fprintln(w, d)
	}
	if run.Source.Emulated {
		fmt.Fprintln(w, "source is a user-space EMULATION: no kernel overrun behaviour")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate\trcvbuf\tdelay\tachieved\tdelivered\tdrop ratio\tunicast p50\tp99\te2e p99\tqueue peak\tburst held\tdrops agree\t")
	for i := range run.Steps {
		st := &run.Steps[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f\t%.2f%%\t%.4f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			st.RatePPS, bytesText(int64(st.RcvBuf)), results.FormatDelay(st.ConsumerDelay),
			medianOf(st, func(s *results.Sample) float64 { return s.AchievedPPS }),
			100*medianOf(st, func(s *results.Sample) float64 { return s.DeliveryRatio }),
			medianOf(st, func(s *results.Sample) float64 { return s.DropRatio() }),
			latencyText(st, func(l *results.Latency) int64 { return l.P50 }, false),
			latencyText(st, func(l *results.Latency) int64 { return l.P99 }, false),
			latencyText(st, func(l *results.Latency) int64 { return l.P99 }, true),
			peakText(int64(medianOf(st, func(s *results.Sample) float64 { return float64(s.Queue.PeakBytes) }))),
			burstText(st), agreeText(st))
	}
	tw.Flush()
	if o := run.Overhead; o != nil {
		fmt.Fprintf(w, "consumer overhead of latency recording: %s\n", o)
	}
}

func medianOf(st *results.Step, f func(*results.Sample) float64) float64 {
	v := make([]float64, len(st.Samples))
	for i := range st.Samples {
		v[i] = f(&st.Samples[i])
	}
	return median(v)
}

func latencyText(st *results.Step, f func(*results.Latency) int64, e2e bool) string {
	var v []float64
	for i := range st.Samples {
		l := st.Samples[i].Unicast
		if e2e {
			l = st.Samples[i].EndToEnd
		}
		if l != nil && l.Count > 0 {
			v = append(v, float64(f(l)))
		}
	}
	if len(v) == 0 {
		return "-"
	}
	return time.Duration(median(v)).Round(time.Microsecond / 10).String()
}

func burstText(st *results.Step) string {
	if b := st.Samples[0].BurstHeld; b != nil {
		return fmt.Sprint(*b)
	}
	return "-"
}

func agreeText(st *results.Step) string {
	bad := 0
	for i := range st.Samples {
		if !st.Samples[i].Drops.Agree {
			bad++
		}
	}
	if bad == 0 {
		return "yes"
	}
	return fmt.Sprintf("%d/%d no", bad, len(st.Samples))
}

func bytesText(b int64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	case b >= 1<<10:
		return fmt.Sprintf("%.0fK", float64(b)/1024)
	}
	return fmt.Sprint(b)
}

// peakText is the queue peak (the receive queue's peak rmem_alloc, in
// bytes) with its unit, which the column's other numbers (a count of
// events, a rate) do not share: "832 B", "11 KiB", "2 MiB".
func peakText(b int64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(b)/1024)
	}
	return fmt.Sprintf("%d B", b)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
