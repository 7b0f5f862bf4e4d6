package nlsock

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch is the receive vector of Sock.Read: one buffer per datagram and,
// if asked for, each datagram's netlink source address. Every reader of a
// Sock receives through one (imp2.Conn, nflog.Conn, imp2-bench's emulated
// hook), so the mmsghdr setup lives here once. The steady state allocates
// nothing. Not safe for concurrent use.
type Batch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrNetlink // nil: the senders' addresses not asked for
}

// NewBatch returns a Batch of n datagrams; with names, Read also fills in
// each datagram's source port (PortID). A socket connect()ed to its peer
// needs no names: the kernel refuses every other sender, and leaving
// msg_name out saves its copy per datagram.
func NewBatch(n int, names bool) *Batch {
	b := &Batch{}
	if names {
		b.names = []unix.RawSockaddrNetlink{}
	}
	b.Grow(n)
	return b
}

// Grow makes room for n datagrams; it allocates only when n is more than
// the batch ever had. The buffers already set stay.
func (b *Batch) Grow(n int) {
	if n <= len(b.hdrs) {
		return
	}
	hdrs, iovs := make([]unix.Mmsghdr, n), make([]unix.Iovec, n)
	copy(iovs, b.iovs)
	b.hdrs, b.iovs = hdrs, iovs
	if b.names != nil {
		b.names = make([]unix.RawSockaddrNetlink, n)
	}
	for i := range b.hdrs {
		h := &b.hdrs[i].Hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		if b.names != nil {
			h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		}
	}
}

// Cap is how many datagrams one Read may return.
func (b *Batch) Cap() int { return len(b.hdrs) }

// Set makes p the buffer of datagram i. The batch keeps a pointer to p
// until Set or Release replaces it.
func (b *Batch) Set(i int, p []byte) {
	iov := &b.iovs[i]
	iov.Base = nil
	if len(p) > 0 {
		iov.Base = &p[0]
	}
	iov.SetLen(len(p))
}

// Release forgets the buffers of datagrams [0, n), so that the batch does
// not keep a caller's buffers alive.
func (b *Batch) Release(n int) {
	for i := range n {
		b.iovs[i].Base = nil
	}
}

// Len is the number of bytes Read put into datagram i's buffer.
func (b *Batch) Len(i int) int { return int(b.hdrs[i].Len) }

// Truncated reports that datagram i was longer than its buffer.
func (b *Batch) Truncated(i int) bool { return b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 }

// PortID is the netlink port datagram i came from; 0 (the kernel) for a
// batch without names.
func (b *Batch) PortID(i int) uint32 {
	if b.names == nil {
		return 0
	}
	return b.names[i].Pid
}

// prepare readies datagrams [0, n) for recvmmsg, which overwrites each
// name length with the sender's.
func (b *Batch) prepare(n int) {
	if b.names == nil {
		return
	}
	for i := range n {
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrNetlink
	}
}
