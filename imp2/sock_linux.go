//go:build linux

package imp2

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/nlsock"
)

// sock is a bound netlink socket (see internal/nlsock for the two ways
// of reading it) and its port id.
type sock struct {
	*nlsock.Sock
	port uint32
}

func openSock(family, netns int, port uint32, blocking bool) (*sock, error) {
	fd, err := socketIn(netns, family, blocking)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	ns, err := nlsock.New(fd, blocking)
	if err != nil {
		return nil, err
	}
	return &sock{Sock: ns, port: sa.(*unix.SockaddrNetlink).Pid}, nil
}

// socketIn creates the socket in network namespace netns (an fd; 0 for the
// current one).
func socketIn(netns, family int, blocking bool) (int, error) {
	fd := -1
	err := inNetNS(netns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, nlsock.SocketType(blocking), family)
		return os.NewSyscallError("socket", err)
	})
	if err != nil && fd >= 0 {
		unix.Close(fd)
		fd = -1
	}
	return fd, err
}

// inNetNS runs f on a thread switched to network namespace ns (an fd; 0:
// f runs where it is).
func inNetNS(ns int, f func() error) error {
	if ns == 0 {
		return f()
	}
	return netns.DoFD(ns, f)
}

func (s *sock) setInt(level, opt, v int, name string) error {
	return s.Control(func(fd int) error {
		return os.NewSyscallError("setsockopt "+name, unix.SetsockoptInt(fd, level, opt, v))
	})
}

func (s *sock) getInt(level, opt int, name string) (int, error) {
	var v int
	err := s.Control(func(fd int) (err error) {
		v, err = unix.GetsockoptInt(fd, level, opt)
		return os.NewSyscallError("getsockopt "+name, err)
	})
	return v, err
}

// setBuf sets a socket buffer, forcing past the rmem_max/wmem_max cap when
// the process may (CAP_NET_ADMIN).
func (s *sock) setBuf(force, plain, n int, name string) error {
	if s.setInt(unix.SOL_SOCKET, force, n, name+"FORCE") == nil {
		return nil
	}
	return s.setInt(unix.SOL_SOCKET, plain, n, name)
}

func (s *sock) memInfo() (MemInfo, error) {
	var m MemInfo
	err := s.Control(func(fd int) (err error) {
		m, err = ReadMemInfo(fd)
		return err
	})
	return m, err
}

// ReadMemInfo reads SO_MEMINFO of any socket, such as another netlink
// consumer's (nfnetlink_log), so that every reader reports queue and drop
// figures the same way.
func ReadMemInfo(fd int) (MemInfo, error) {
	var m MemInfo
	l := uint32(unsafe.Sizeof(m))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&m)), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return m, os.NewSyscallError("getsockopt SO_MEMINFO", e)
	}
	return m, nil
}

// sendTo sends one datagram to port without waiting: control messages are
// rare, and a full peer queue is an error worth reporting.
func (s *sock) sendTo(b []byte, port uint32) error {
	return s.Control(func(fd int) error {
		err := unix.Sendto(fd, b, unix.MSG_DONTWAIT, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port})
		return os.NewSyscallError("sendto", err)
	})
}

// connect connects the socket to port: the kernel then refuses datagrams
// from every other port.
func (s *sock) connect(port uint32) error {
	return s.Control(func(fd int) error {
		return os.NewSyscallError("connect", unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port}))
	})
}

// receiver reads datagrams with recvmmsg into caller-owned Messages, in
// an nlsock.Batch kept between calls so that a steady-state read
// allocates nothing. Not safe for concurrent use.
type receiver struct {
	s *sock
	b *nlsock.Batch
	// peer is the one sender of a connected socket (Config.Connect),
	// whose batch asks for no addresses; names tells the two apart.
	peer  uint32
	names bool
}

// newReceiver reads s; connected says that it was connected to peer.
func newReceiver(s *sock, connected bool, peer uint32) *receiver {
	return &receiver{s: s, b: nlsock.NewBatch(0, !connected), peer: peer, names: !connected}
}

// read blocks until at least one datagram is queued (or the deadline
// passes, or the socket closes) and fills msgs[:n]. The errno of a failed
// recvmmsg is returned unwrapped; other errors as nlsock.Sock.Read returns
// them.
func (r *receiver) read(msgs []Message) (int, error) {
	r.b.Grow(len(msgs))
	for i := range msgs {
		r.b.Set(i, msgs[i].Buf)
	}
	// The buffers stay set after the read (until the next sets others or
	// the receiver is dropped with its Conn): a caller reads into the same
	// ones each time, and releasing and setting them again cost a read of
	// one datagram some 120 ns (BenchmarkShortRead).
	n, err := r.s.Read(r.b, len(msgs))
	if err != nil {
		return 0, err
	}
	for i := range n {
		m := &msgs[i]
		m.N, m.Truncated, m.PortID = r.b.Len(i), r.b.Truncated(i), r.peer
		if r.names {
			m.PortID = r.b.PortID(i)
		}
	}
	return n, nil
}
