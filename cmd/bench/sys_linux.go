package main

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvmmsg receives up to len(hdrs) datagrams; x/sys/unix has no wrapper.
func recvmmsg(fd int, hdrs []unix.Mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd),
		uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_WAITFORONE, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
