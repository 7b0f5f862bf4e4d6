//go:build linux

package pace

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Waiter waits for deadlines on a Clock. Use it from one goroutine,
// between Lock and Unlock.
type Waiter struct {
	Clock Clock
	// Spin is how long before a deadline sleeping stops and spinning
	// starts; 0 means DefaultSpin, negative means always spin.
	Spin time.Duration
	// Stop, if set, makes Until return early when it becomes true.
	Stop *atomic.Bool

	slack  int
	locked bool
	// Sleeps and Spun count the sleeps made and the ns spent spinning.
	Sleeps int64
	Spun   int64
}

// NewWaiter returns a Waiter on c.
func NewWaiter(c Clock, spin time.Duration) *Waiter {
	return &Waiter{Clock: c, Spin: spin}
}

// Lock pins the calling goroutine to its thread and sets the thread's
// timer slack to 1 ns, so that sleeps end when asked (the default slack
// of 50 µs would delay every wake-up by up to that). Call Unlock when done.
func (w *Waiter) Lock() {
	runtime.LockOSThread()
	w.locked = true
	if s, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); err == nil {
		w.slack = s
	}
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
}

// Unlock restores the thread's timer slack and unpins the goroutine.
func (w *Waiter) Unlock() {
	if !w.locked {
		return
	}
	if w.slack > 0 {
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(w.slack), 0, 0, 0)
	}
	w.locked = false
	runtime.UnlockOSThread()
}

// Until returns at the deadline (ns on the Clock) or just after it, and
// returns the Clock's time then. A deadline already past returns at once.
// It sleeps until Spin before the deadline, then spins.
func (w *Waiter) Until(deadline int64) int64 {
	spin := int64(w.Spin)
	if spin == 0 {
		spin = int64(DefaultSpin)
	}
	for {
		now := w.Clock.Now()
		if now >= deadline {
			return now
		}
		if w.Stop != nil && w.Stop.Load() {
			return now
		}
		wake := deadline - spin
		if spin < 0 || wake <= now {
			break
		}
		wake = min(wake, now+int64(maxSleep))
		ts := unix.NsecToTimespec(w.Clock.mono + wake)
		_ = unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) // EINTR: loop
		w.Sleeps++
	}
	begin := w.Clock.Now()
	now := begin
	for now < deadline {
		now = w.Clock.Now()
	}
	w.Spun += now - begin
	return now
}
