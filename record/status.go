package record

import "github.com/imp2/imp2/internal/progress"

// Status returns a function for a progress bar (progress.Bar.Follow): the
// frames of Count, or the time of Duration (whichever is nearer its end
// when both are set), with the status line (Progress.Line) as its detail;
// without either limit the status line alone. Each function keeps the
// previous state for the rate, so it is for one goroutine.
func (r *Recorder) Status() func() (progress.Status, bool) {
	var prev Progress
	return func() (progress.Status, bool) {
		p := r.Progress()
		if !p.Started {
			return progress.Status{}, false
		}
		s := progress.Status{Detail: p.Line(prev)}
		prev = p
		var byCount, byTime float64
		if c := r.opts.Count; c > 0 {
			byCount = float64(p.Received) / float64(c)
		}
		if d := r.opts.Duration; d > 0 {
			byTime = float64(p.Elapsed) / float64(d)
		}
		switch {
		case byCount > 0 && byCount >= byTime:
			s.Done, s.Total, s.Count = float64(p.Received), float64(r.opts.Count), true
		case r.opts.Duration > 0:
			s.Done, s.Total = min(p.Elapsed, r.opts.Duration).Seconds(), r.opts.Duration.Seconds()
		case r.opts.Count > 0:
			s.Done, s.Total, s.Count = 0, float64(r.opts.Count), true
		}
		return s, true
	}
}
