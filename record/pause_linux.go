package record

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pause sleeps d on the calling thread with a raw nanosleep: the runtime
// is not told, so the receive loop's locked thread keeps its P and no
// other thread is woken to take it, which a time.Sleep there costs twice
// (a park and a wake-up of the locked thread). Any signal ends it early
// (EINTR, not restarted), the runtime's preemption signal included: a
// garbage collection's stop does not wait for it, and sysmon preempts a
// goroutine that seems to run for 10ms, the bound of MaxCoalesce. Only
// with more than one P (see coalescer.raw).
func pause(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
