//go:build linux

// Package mmsg is the one sendmmsg(2) of the toolkit's senders: the flood's
// raw socket, the ICMP replay's packet socket and imp2.Server's netlink
// socket. A Batch keeps its message headers and iovecs between calls, so
// that a steady-state send allocates nothing; what to do with a message
// the kernel refused (skip it, retry, give up) stays each caller's policy.
// The receive side (internal/nlsock's recvmmsg) builds its batches on the
// same vector (Headers).
package mmsg

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch is a vector of datagrams, one buffer each, sent with sendmmsg.
// Not safe for concurrent use.
type Batch struct {
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
}

// Sockaddr is a raw socket address a Batch can send to.
type Sockaddr interface {
	unix.RawSockaddrInet4 | unix.RawSockaddrLinklayer | unix.RawSockaddrNetlink
}

// Grow makes room for n datagrams; it allocates only when n is more than
// it ever had. The headers and buffers already set stay.
func (b *Batch) Grow(n int) {
	if n <= len(b.hdrs) {
		return
	}
	hdrs, iovs := make([]unix.Mmsghdr, n), make([]unix.Iovec, n)
	copy(hdrs, b.hdrs)
	copy(iovs, b.iovs)
	b.hdrs, b.iovs = hdrs, iovs
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
}

// Set makes p the buffer of datagram i. The batch keeps a pointer to p
// until Set or Release replaces it. Setting the buffer a datagram already
// has stores nothing: a receiver that reads into the same buffers every
// time (imp2.Conn's) sets them all before each recvmmsg, and a store of a
// pointer, with its write barrier, per slot cost a read that returns one
// datagram of 128 some 120 ns of its 1.1 µs (imp2's BenchmarkShortRead).
func (b *Batch) Set(i int, p []byte) {
	iov := &b.iovs[i]
	var base *byte
	if len(p) > 0 {
		base = &p[0]
	}
	if iov.Base != base {
		iov.Base = base
	}
	if int(iov.Len) != len(p) {
		iov.SetLen(len(p))
	}
}

// Release forgets the buffers of datagrams [0, n), so that a caller's
// buffers are not kept alive by the batch.
func (b *Batch) Release(n int) {
	for i := range n {
		b.iovs[i].Base = nil
	}
}

// Headers returns the message headers of datagrams [0, n), for a
// recvmmsg into the batch's buffers; it is where the kernel leaves each
// datagram's length and flags, and where a receiver points msg_name.
func (b *Batch) Headers(n int) []unix.Mmsghdr { return b.hdrs[:n] }

// SetAddr addresses datagrams [0, n) to sa, which the batch points at: sa
// must stay where it is (a field of the caller's long-lived struct) while
// the batch sends to it.
func SetAddr[T Sockaddr](b *Batch, n int, sa *T) {
	for i := range n {
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(sa))
		h.Namelen = uint32(unsafe.Sizeof(*sa))
	}
}

// Send sends datagrams [from, to) on socket fd with sendmmsg and flags,
// calling again after a short count or EINTR, and returns how many went
// before the first that failed and that one's errno (0 when all went).
// The next call may start at from+n+1 to skip the failed one.
//
// A short count is not an error: sendmmsg returns the error of the
// message that stopped it only when it is the first of the call, so the
// call after a short count starts at that message and gets its error
// itself (a pending socket error too: the next send's skb allocation
// returns it).
func (b *Batch) Send(fd uintptr, from, to, flags int) (int, syscall.Errno) {
	sent := 0
	for i := from; i < to; {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[i])),
			uintptr(to-i), uintptr(flags), 0, 0)
		switch e {
		case 0:
			i += int(n)
			sent += int(n)
		case unix.EINTR:
		default:
			return sent, e
		}
	}
	return sent, 0
}
