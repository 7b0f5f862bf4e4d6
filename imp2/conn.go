package imp2

import (
	"fmt"
	"syscall"
	"time"
)

// UserSockFamily is NETLINK_USERSOCK, the unit user-space emulations of the
// module (Server) use: two processes talking through the kernel's real
// netlink unicast path.
const UserSockFamily = 2

// MaxRcvBuf is the largest Config.RcvBuf: setsockopt takes an int and the
// kernel stores twice the request in sk_rcvbuf, also an int. Above it a
// recent kernel clamps the request silently to this value, an older one
// overflows the doubled int and falls back to the smallest buffer
// (SOCK_MIN_RCVBUF), and from 2G on the int itself wraps: each a buffer
// other than the one asked for, so Dial refuses the request instead.
const MaxRcvBuf = 1<<30 - 1 // INT_MAX / 2

// Config configures a consumer Conn.
type Config struct {
	// Family is the netlink unit: 0 means DefaultFamily (31, the module);
	// UserSockFamily (2) talks to a Server.
	Family int
	// Peer is the port id the control messages go to: 0 is the kernel (the
	// module), anything else a Server's port.
	Peer uint32
	// PortID is the local port to bind; 0 lets the kernel choose.
	PortID uint32
	// RcvBuf, if positive, sets the receive buffer in bytes, with
	// SO_RCVBUFFORCE where allowed (CAP_NET_ADMIN) so that rmem_max does
	// not cap it, else SO_RCVBUF. The kernel doubles the value; Conn.RcvBuf
	// reports what it granted. At most MaxRcvBuf.
	RcvBuf int
	// NoENOBUFS sets NETLINK_NO_ENOBUFS: an overrun then drops events
	// silently (visible as sequence gaps and SO_MEMINFO drops) instead of
	// failing the next read with ENOBUFS.
	NoENOBUFS bool
	// Ack asks the peer to acknowledge the registration (NLM_F_ACK) and
	// makes Dial wait for it, so a refused registration is an error. The
	// original module and other peers do not answer: leave it off for them.
	Ack bool
	// AckTimeout bounds the wait for the acknowledgement; 0 means 2 s.
	AckTimeout time.Duration
	// NetNS, if non-zero, is an open file descriptor of the network
	// namespace to create the socket in.
	NetNS int
	// Blocking keeps the socket out of the Go runtime's poller: a read
	// sleeps in the kernel on its thread, as a C consumer's does, until
	// data, the deadline (SO_RCVTIMEO, within a few ms) or, within 50 ms,
	// Close. A socket in the poller is on an epoll list, and every
	// datagram queued to it then runs the epoll callback in the sender
	// (for the module: in the softirq that unicasts): perf put
	// sock_def_readable at 12% of a top-speed sender's time with a polled
	// consumer, 2% with a blocking one. Use it for a goroutine that does
	// nothing but read, in a process whose other goroutines leave it a P:
	// back from the kernel it needs one again. imp2-record gains from it;
	// imp2-bench, whose flood pacer spins in the same process, lost more
	// events with it in 16 KiB buffers and keeps the poller.
	Blocking bool
	// Connect connect()s the socket to Peer: the kernel then refuses the
	// datagrams of every other port (their sender gets ECONNREFUSED), so
	// ReadBatch need not ask for each datagram's source address
	// (msg_name) and saves its copy; Message.PortID is always Peer.
	Connect bool
	// OnControl, if set, is called with every frame of the conversation
	// with the peer that Conn has on its own: each control message it
	// sends (IMP2_U_PID, IMP2_GET_STATS, IMP2_CLOSE), once the kernel has
	// taken it, and each reply it consumes instead of returning it from
	// ReadBatch (the registration acknowledgement, the IMP2_STATS reply
	// that Stats read itself). With what ReadBatch returns, that is every
	// datagram the socket sent or received, byte for byte, in the order
	// they went over it: a recorder writes its trace from the two without
	// knowing Conn's sequence numbers. It runs on the goroutine of the
	// Dial, Stats or Close call, which waits for it; frame is valid only
	// during the call, and the function must not call the Conn.
	OnControl func(dir ControlDir, frame []byte)
}

// ControlDir says which way a frame passed to Config.OnControl went.
type ControlDir uint8

const (
	ControlSent     ControlDir = iota + 1 // from this socket to the peer
	ControlReceived                       // from the peer, consumed by Conn
)

// Conn is a registered imp2 consumer.
//
// It is built on golang.org/x/sys/unix rather than github.com/mdlayher/netlink:
// that Conn reads one datagram per call into buffers it allocates and sends
// only to port 0, not to a Server. BenchmarkReceive (48-byte events over
// NETLINK_USERSOCK from a flooding sender goroutine / process; 2 cores,
// loaded; median of 3) measured per message:
//
//	ReadBatch, 64 buffers (recvmmsg)    354k / 293k msgs/s   0 allocs
//	ReadBatch, 1 buffer                 229k / 218k msgs/s   0 allocs
//	mdlayher Receive                     44k /  53k msgs/s  36 allocs, 1572 B
//	mdlayher, MessageBufferSize 4096     69k / 105k msgs/s  25 allocs,  984 B
//
// so the batch path is 2.8-5x the best mdlayher figure.
//
// Its methods are safe for concurrent use; reads are serialized.
type Conn struct {
	conn // the platform's state: conn_linux.go
}

// Message is one received datagram. The caller owns Buf and keeps its
// length: ReadBatch receives into Buf[:len(Buf)] and sets the other fields.
type Message struct {
	Buf []byte
	// N is the number of bytes received into Buf.
	N int
	// Truncated reports that the datagram was longer than Buf and its
	// tail was lost.
	Truncated bool
	// PortID is the sender's port id, set by the kernel: 0 for the module.
	PortID uint32
}

// Data returns the received bytes.
func (m *Message) Data() []byte { return m.Buf[:m.N] }

// MemInfo is the socket's SO_MEMINFO: queue sizes and drop count, in bytes
// except Drops.
type MemInfo struct {
	RmemAlloc  uint32 // receive queue memory in use (skb truesize)
	RcvBuf     uint32 // receive buffer limit
	WmemAlloc  uint32
	SndBuf     uint32
	FwdAlloc   uint32
	WmemQueued uint32
	Optmem     uint32
	Backlog    uint32
	Drops      uint32 // messages the kernel dropped for this socket (sk_drops)
}

// ErrOverrun is returned by ReadBatch when the kernel dropped events because
// the receive queue was full (ENOBUFS). The socket stays usable: count it
// and read on.
var ErrOverrun = fmt.Errorf("imp2: receive queue overrun, events were dropped: %w", syscall.ENOBUFS)
