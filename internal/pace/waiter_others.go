//go:build !linux

package pace

import (
	"errors"
	"sync/atomic"
	"time"
)

// Waiter waits for deadlines on a Clock; off Linux it sleeps with
// time.Sleep, whose resolution is coarse.
type Waiter struct {
	Clock  Clock
	Spin   time.Duration
	Stop   *atomic.Bool
	Sleeps int64
	Spun   int64
}

// NewWaiter returns a Waiter on c.
func NewWaiter(c Clock, spin time.Duration) *Waiter { return &Waiter{Clock: c, Spin: spin} }

// Lock does nothing off Linux.
func (w *Waiter) Lock() {}

// Realtime is not supported off Linux.
func (w *Waiter) Realtime(int) error { return errors.ErrUnsupported }

// Unlock does nothing off Linux.
func (w *Waiter) Unlock() {}

// Until returns at the deadline or just after it.
func (w *Waiter) Until(deadline int64) int64 {
	spin := int64(w.Spin)
	if spin == 0 {
		spin = int64(DefaultSpin)
	}
	for {
		now := w.Clock.Now()
		if now >= deadline || (w.Stop != nil && w.Stop.Load()) {
			return now
		}
		if spin >= 0 && deadline-spin > now {
			time.Sleep(time.Duration(min(deadline-spin-now, int64(maxSleep))))
			w.Sleeps++
			continue
		}
		for now < deadline {
			now = w.Clock.Now()
		}
		return now
	}
}
