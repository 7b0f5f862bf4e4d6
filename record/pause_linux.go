package record

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pause sleeps d on the calling thread with a raw nanosleep: the runtime
// is not told, so the receive loop's locked thread keeps its P and no
// other thread is woken to take it, which a time.Sleep there costs twice
// (a park and a wake-up of the locked thread). A signal ends it early.
// d is short (Options.Coalesce, at most MaxCoalesce); a garbage
// collection's stop waits for it at worst.
func pause(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
