//go:build linux

package pace

import (
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSleep is the longest sleep made without telling the runtime (a GC
// stop-the-world may wait that long for the sleeping goroutine).
const rawSleep = time.Millisecond

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
	policy *unix.SchedAttr // to restore after Realtime
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

// Realtime puts the locked thread in SCHED_FIFO at priority prio (1–99;
// CAP_SYS_NICE), so that busy-waiting is not preempted by ordinary tasks
// and wake-ups preempt them. The kernel's RT throttling
// (sched_rt_runtime_us) still leaves other tasks 5% of each CPU. Call it
// after Lock; Unlock restores the previous policy.
func (w *Waiter) Realtime(prio int) error {
	old, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return err
	}
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}, 0); err != nil {
		return err
	}
	w.policy = old
	return nil
}

// Unlock restores the thread's timer slack and scheduling policy and
// unpins the goroutine.
func (w *Waiter) Unlock() {
	if !w.locked {
		return
	}
	if w.policy != nil {
		_ = unix.SchedSetAttr(0, w.policy, 0)
		w.policy = nil
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
		if wake-now <= int64(rawSleep) {
			// A short sleep bypasses the runtime's syscall bookkeeping:
			// otherwise sysmon may hand our P to another thread while we
			// sleep, and on waking we would wait for a P again.
			unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME,
				uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		} else {
			_ = unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) // EINTR: loop
		}
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
