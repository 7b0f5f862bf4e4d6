package nlsock

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/mmsg"
)

// Batch is the receive vector of Sock.Read: one buffer per datagram
// (mmsg.Batch's, shared with the send side: Set, Release) and, if asked
// for, each datagram's netlink source address. Every reader of a Sock
// receives through one (imp2.Conn, nflog.Conn, imp2-bench's emulated
// hook), so the mmsghdr setup lives here once. The steady state allocates
// nothing. Not safe for concurrent use.
type Batch struct {
	mmsg.Batch
	n     int                       // datagrams it has room for
	names []unix.RawSockaddrNetlink // nil: the senders' addresses not asked for
	named bool
}

// NewBatch returns a Batch of n datagrams; with names, Read also fills in
// each datagram's source port (PortID). A socket connect()ed to its peer
// needs no names: the kernel refuses every other sender, and leaving
// msg_name out saves its copy per datagram.
func NewBatch(n int, names bool) *Batch {
	b := &Batch{named: names}
	b.Grow(n)
	return b
}

// Grow makes room for n datagrams; it allocates only when n is more than
// the batch ever had. The buffers already set stay.
func (b *Batch) Grow(n int) {
	if n <= b.n {
		return
	}
	b.Batch.Grow(n)
	b.n = n
	if !b.named {
		return
	}
	b.names = make([]unix.RawSockaddrNetlink, n)
	hdrs := b.Headers(n)
	for i := range hdrs {
		hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
}

// Len is the number of bytes Read put into datagram i's buffer.
func (b *Batch) Len(i int) int { return int(b.Headers(b.n)[i].Len) }

// Truncated reports that datagram i was longer than its buffer.
func (b *Batch) Truncated(i int) bool { return b.Headers(b.n)[i].Hdr.Flags&unix.MSG_TRUNC != 0 }

// PortID is the netlink port datagram i came from; 0 (the kernel) for a
// batch without names.
func (b *Batch) PortID(i int) uint32 {
	if b.names == nil {
		return 0
	}
	return b.names[i].Pid
}

// prepare returns the headers of datagrams [0, n) ready for recvmmsg,
// which overwrites each name length with the sender's.
func (b *Batch) prepare(n int) []unix.Mmsghdr {
	hdrs := b.Headers(n)
	if b.names != nil {
		for i := range hdrs {
			hdrs[i].Hdr.Namelen = unix.SizeofSockaddrNetlink
		}
	}
	return hdrs
}
