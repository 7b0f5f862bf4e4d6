// Package pace schedules work against absolute deadlines measured from one
// start time, so that errors never accumulate over a long run: every
// deadline is an offset from the Clock's start, computed from the event's
// index or timestamp, never from the previous event's actual time.
//
// A Waiter sleeps with clock_nanosleep(TIMER_ABSTIME) until Spin before a
// deadline, then busy-waits on the clock for the rest. Go's time.Sleep is
// no use here: measured on the 2-core development machine (kernel 6.18,
// loaded), time.Sleep(50µs) returns after about 1 ms (p50 1037 µs), while
// clock_nanosleep with the thread's timer slack at 1 ns wakes p50 15–23 µs,
// p90 32–38 µs late (with the default 50 µs slack: p50 66–76 µs).
//
// Errors records actual − scheduled times in an HdrHistogram without
// allocating.
//
// The package is used by imp2-replay and is meant for any paced sender
// (imp2-bench, imp2-replay -to icmp).
package pace

import (
	"math"
	"time"
	_ "unsafe" // runtime.nanotime
)

// DefaultSpin is how long before a deadline a Waiter stops sleeping and
// spins. clock_nanosleep wakes up to a few tens of µs late on a loaded
// 2-core machine (p90 ≈ 37 µs, measured); 80 µs covers that with margin
// while leaving sleeps to any gap longer than it.
const DefaultSpin = 80 * time.Microsecond

// maxSleep bounds one sleep so that Stop is noticed during long gaps.
const maxSleep = 50 * time.Millisecond

// Monotonic returns the monotonic clock in ns: the runtime's own clock,
// read through the vDSO in about 30 ns, which on Linux is CLOCK_MONOTONIC:
// the clock of the kernel's ktime_get_ns and so of the imp2 module's event
// timestamps, and of absolute clock_nanosleep. It is the one clock of
// everything that paces or timestamps (Clock, internal/flood).
func Monotonic() int64 { return nanotime() }

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Clock reads monotonic time in nanoseconds since it was started.
type Clock struct {
	start time.Time // wall-clock start, for reports
	mono  int64     // Monotonic at start: Now's origin, for absolute sleeps
}

// NewClock starts a clock now.
func NewClock() Clock {
	return Clock{start: time.Now(), mono: Monotonic()}
}

// Now returns the nanoseconds elapsed since the clock started.
func (c Clock) Now() int64 { return Monotonic() - c.mono }

// Mono returns the Monotonic time at which the clock started: Now() +
// Mono() is Monotonic(), for callers that keep absolute times.
func (c Clock) Mono() int64 { return c.mono }

// Start returns the wall-clock time at which the clock started.
func (c Clock) Start() time.Time { return c.start }

// RateOffset returns the deadline of event i (from 0) at pps events per
// second: i/pps seconds, in ns, computed from i alone; math.MaxInt64 (or
// MinInt64) where that is more than an int64 holds.
func RateOffset(i int64, pps float64) int64 {
	return Ns(float64(i) * 1e9 / pps)
}

// ScaleOffset maps a recorded interval d (ns) to a deadline at the given
// speed (2 = twice as fast), saturated as RateOffset's. At speed 1 it is
// exact.
func ScaleOffset(d int64, speed float64) int64 {
	if speed == 1 {
		return d
	}
	return Ns(float64(d) / speed)
}

// Ns rounds v to int64 nanoseconds, saturating at math.MaxInt64 and
// math.MinInt64 (NaN: MaxInt64): a plain conversion of a value out of
// range gives an arbitrary one, such as a date in 1734.
func Ns(v float64) int64 {
	switch v = math.Round(v); {
	case v >= math.MaxInt64 || math.IsNaN(v):
		return math.MaxInt64
	case v <= math.MinInt64:
		return math.MinInt64
	}
	return int64(v)
}
