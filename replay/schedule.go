package replay

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/pcapnl"
)

// timing is Timing with what the output adds: whether the replay follows
// the clock. Every deadline is an offset from one start time, computed
// from the frame's recorded time or index alone, so errors never
// accumulate (internal/pace).
type timing struct {
	Timing
	wait bool // follow the clock (the output does, or Timing.Realtime)
}

// replayer plays the input into the output. run is its only hot loop:
// it allocates nothing per frame.
type replayer struct {
	t    timing
	in   *input
	out  Output
	stop *atomic.Bool

	clock pace.Clock
	w     *pace.Waiter
	errs  *pace.Errors
	ts    []int64 // output timestamps of a batch
	dls   []int64 // deadlines of a batch

	t0       int64 // recorded time of the first frame
	haveT0   bool
	span     int64 // scaled recorded span of one pass (last − first)
	loop     int
	idx      int64 // frames scheduled so far, all loops
	sentN    atomic.Int64
	loopsRun int  // passes over the input, the last one perhaps cut short
	drained  bool // the first pass played every frame the input had

	firstSend, lastSend, lastEnd int64 // clock times
	firstDL, lastDL              int64
	sendErr                      error
}

func newReplayer(t timing, in *input, out Output, stop *atomic.Bool) *replayer {
	r := &replayer{t: t, in: in, out: out, stop: stop, errs: pace.NewErrors(),
		ts: make([]int64, t.Batch), dls: make([]int64, t.Batch)}
	return r
}

// deadline returns frame f's due time on the clock (ns after start); i is
// its index over all loops.
// It saturates at math.MaxInt64 where the schedule leaves an int64.
func (r *replayer) deadline(f *pcapnl.Frame, i int64) int64 {
	loopOff := mulSat(int64(r.loop), int64(r.t.LoopDelay))
	if r.t.PPS > 0 {
		return addSat(pace.RateOffset(i, r.t.PPS), loopOff)
	}
	speed := r.t.Speed
	if r.t.TopSpeed {
		speed = 1
	}
	return addSat(addSat(mulSat(int64(r.loop), r.span), loopOff), pace.ScaleOffset(f.Time-r.t0, speed))
}

// addSat and mulSat are a+b and a*b for a deadline, saturated at
// math.MaxInt64 (b ≥ 0 for mulSat, a ≥ 0).
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// ErrSchedule is the replay's error when a frame's re-timed timestamp is
// more than an int64 of nanoseconds since 1970 holds (past 2262): a
// Timing.Speed or Timing.PPS too slow for the trace.
var ErrSchedule = errors.New("schedule: past what a timestamp holds (the year 2262)")

// checkSchedule refuses deadline dl of frame i (from 0) whose timestamp,
// t0+dl, an int64 cannot hold.
func (r *replayer) checkSchedule(dl, i int64) error {
	if dl < math.MaxInt64 && (r.t0 <= 0 || dl <= math.MaxInt64-r.t0) {
		return nil
	}
	what := fmt.Sprintf("Timing.Speed %g", r.t.Speed)
	if r.t.PPS > 0 {
		what = fmt.Sprintf("Timing.PPS %g", r.t.PPS)
	} else if r.t.TopSpeed || r.t.Speed >= 1 {
		what = "Timing.LoopDelay " + r.t.LoopDelay.String()
	}
	return fmt.Errorf("frame %d: %w: %s is too slow for this trace", i+1, ErrSchedule, what)
}

// run replays every pass and returns the first output error.
func (r *replayer) run() error {
	r.w = pace.NewWaiter(pace.Clock{}, r.t.Spin)
	r.w.Stop = r.stop
	if r.t.wait && !r.t.TopSpeed {
		r.w.Lock()
		defer r.w.Unlock()
		if r.t.RT > 0 {
			if err := r.w.Realtime(r.t.RT); err != nil {
				return fmt.Errorf("Timing.RT %d: SCHED_FIFO: %w", r.t.RT, err)
			}
		}
	}
	r.clock = pace.NewClock()
	r.w.Clock = r.clock
	r.out.Begin(r.clock)
	var kept []*chunk
	var last int64 // recorded time of the last frame of the first pass
	for r.loop = 0; r.t.Loops == 0 || r.loop < r.t.Loops; r.loop++ {
		next := r.source(r.loop, kept)
		played := false
		for c := next(); c != nil; c = next() {
			if r.loop == 0 {
				if r.in.keep {
					kept = append(kept, c)
				}
				if !r.haveT0 {
					r.t0, r.haveT0 = c.frames[0].Time, true
				}
				last = c.frames[len(c.frames)-1].Time
			}
			played = true
			done := r.play(c)
			if !r.in.keep {
				r.in.recycle(c)
			}
			if done || r.sendErr != nil {
				r.loopsRun = r.loop + 1
				return r.sendErr
			}
		}
		if r.loop == 0 {
			r.drained = true
		}
		r.loopsRun = r.loop + 1 // a pass over the input, whether it sent a frame or not
		if !played || r.in.err != nil {
			break // nothing passed the filter, or a broken input: never loop over it
		}
		if r.loop == 0 {
			speed := r.t.Speed
			if r.t.TopSpeed {
				speed = 1
			}
			r.span = pace.ScaleOffset(last-r.t0, speed)
		}
	}
	return r.sendErr
}

// source returns the chunks of one pass: from the reader on the first,
// from memory afterwards.
func (r *replayer) source(loop int, kept []*chunk) func() *chunk {
	if loop == 0 {
		return r.in.next
	}
	i := 0
	return func() *chunk {
		if i >= len(kept) {
			return nil
		}
		i++
		return kept[i-1]
	}
}

// play sends one chunk and reports whether the replay is over (limit,
// duration, interrupt).
func (r *replayer) play(c *chunk) bool {
	fr := c.frames
	paced := r.t.wait && !r.t.TopSpeed
	for i := 0; i < len(fr); {
		if r.stop.Load() {
			return true
		}
		sent := r.sentN.Load()
		if r.t.Limit > 0 && sent >= r.t.Limit {
			return true
		}
		maxN := min(r.t.Batch, len(fr)-i)
		if r.t.Limit > 0 {
			maxN = int(min(int64(maxN), r.t.Limit-sent))
		}
		dl := r.deadline(&fr[i], r.idx)
		if err := r.checkSchedule(dl, r.idx); err != nil {
			r.sendErr = err // before waiting for it, for ever
			return true
		}
		if r.t.Duration > 0 && r.overDuration(dl) {
			return true
		}
		now := int64(0)
		if paced {
			now = r.w.Until(dl)
		}
		r.dls[0] = dl
		n := 1
		for n < maxN {
			d := r.deadline(&fr[i+n], r.idx+int64(n))
			if r.checkSchedule(d, 0) != nil {
				break // the next send reports it
			}
			if (paced && d > now) || (r.t.Duration > 0 && !(r.t.wait && r.t.TopSpeed) && d >= int64(r.t.Duration)) {
				break
			}
			r.dls[n] = d
			n++
		}
		for k := range n {
			r.ts[k] = r.t0 + r.dls[k]
		}
		start := r.clock.Now()
		if err := r.out.Send(fr[i:i+n], r.ts[:n]); err != nil {
			r.sendErr = fmt.Errorf("output: %w", err)
			return true
		}
		end := r.clock.Now()
		if paced {
			for k := range n {
				r.errs.Record(start, r.dls[k])
			}
		}
		if r.sentN.Load() == 0 {
			r.firstSend, r.firstDL = start, r.dls[0]
		}
		r.lastSend, r.lastEnd, r.lastDL = start, end, r.dls[n-1]
		r.sentN.Add(int64(n))
		r.idx += int64(n)
		i += n
	}
	return false
}

// overDuration reports whether a frame due at dl falls outside Duration:
// by its deadline when the replay follows a schedule, by the clock at top
// speed.
func (r *replayer) overDuration(dl int64) bool {
	if r.t.wait && r.t.TopSpeed {
		return r.clock.Now() >= int64(r.t.Duration)
	}
	return dl >= int64(r.t.Duration)
}
