//go:build linux

package imp2

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sock is a netlink socket. By default it is non-blocking and registered
// with the runtime poller, so that reads park the goroutine (not a thread)
// and Close or a deadline wakes them. A blocking sock stays out of the
// poller: its reads sleep in the kernel on the reading thread, as a C
// consumer's do, at most until the deadline (SO_RCVTIMEO is set to it;
// the kernel rounds it up to a jiffy) and notice Close within blockingPoll.
type sock struct {
	f    *os.File
	rc   syscall.RawConn
	port uint32

	blocking bool
	deadline atomic.Int64  // blocking: read deadline, ns since the epoch; 0 for none
	closing  atomic.Bool   // blocking: Close has begun
	rcvtimeo time.Duration // blocking: SO_RCVTIMEO as last set; owned by the reader
}

// blockingPoll is the longest SO_RCVTIMEO of a blocking sock: how long a
// read sleeps before it looks at Close again.
const blockingPoll = 50 * time.Millisecond

func openSock(family, netns int, port uint32, blocking bool) (*sock, error) {
	fd, err := socketIn(netns, family, blocking)
	if err != nil {
		return nil, err
	}
	if blocking {
		if err := setRcvTimeo(fd, blockingPoll); err != nil {
			unix.Close(fd)
			return nil, err
		}
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
	// NewFile registers a non-blocking fd with the poller and leaves a
	// blocking one out.
	s := &sock{f: os.NewFile(uintptr(fd), "netlink"), port: sa.(*unix.SockaddrNetlink).Pid, blocking: blocking}
	if blocking {
		s.rcvtimeo = blockingPoll
	}
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
}

// socketIn creates the socket in network namespace netns (an fd; 0 for the
// current one). setns affects only the calling thread, so the goroutine
// stays locked to it while it is switched.
func socketIn(netns, family int, blocking bool) (int, error) {
	typ := unix.SOCK_RAW | unix.SOCK_CLOEXEC
	if !blocking {
		typ |= unix.SOCK_NONBLOCK
	}
	socket := func() (int, error) {
		fd, err := unix.Socket(unix.AF_NETLINK, typ, family)
		return fd, os.NewSyscallError("socket", err)
	}
	if netns == 0 {
		return socket()
	}
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("imp2: current network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return -1, os.NewSyscallError("setns", err)
	}
	fd, err := socket()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the other namespace: leave it locked so
		// the runtime retires it when this goroutine ends.
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, os.NewSyscallError("setns back", err)
	}
	runtime.UnlockOSThread()
	return fd, err
}

// setReadDeadline sets the deadline of the reads; the zero time means none.
func (s *sock) setReadDeadline(t time.Time) error {
	if !s.blocking {
		return s.f.SetReadDeadline(t)
	}
	var ns int64
	if !t.IsZero() {
		ns = max(t.UnixNano(), 1)
	}
	s.deadline.Store(ns)
	return nil
}

// close closes the socket. A blocking read in progress returns within
// blockingPoll.
func (s *sock) close() error {
	s.closing.Store(true)
	return s.f.Close()
}

func (s *sock) control(fn func(fd int) error) error {
	var ferr error
	if err := s.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (s *sock) setInt(level, opt, v int, name string) error {
	return s.control(func(fd int) error {
		return os.NewSyscallError("setsockopt "+name, unix.SetsockoptInt(fd, level, opt, v))
	})
}

func (s *sock) getInt(level, opt int, name string) (int, error) {
	var v int
	err := s.control(func(fd int) (err error) {
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
	err := s.control(func(fd int) (err error) {
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
	return s.control(func(fd int) error {
		err := unix.Sendto(fd, b, unix.MSG_DONTWAIT, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port})
		return os.NewSyscallError("sendto", err)
	})
}

// receiver reads datagrams with recvmmsg into caller-owned Messages. Its
// scratch arrays and the read callback are kept between calls so that a
// steady-state read allocates nothing. Not safe for concurrent use.
type receiver struct {
	s     *sock
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrNetlink
	vlen  int
	n     int
	errno syscall.Errno
	err   error                 // os.ErrDeadlineExceeded or os.ErrClosed of a blocking read
	fn    func(fd uintptr) bool // r.recv or r.recvBlocking, bound once
}

func newReceiver(s *sock) *receiver {
	r := &receiver{s: s}
	r.fn = r.recv
	if s.blocking {
		r.fn = r.recvBlocking
	}
	return r
}

// read blocks until at least one datagram is queued (or the deadline
// passes, or the socket closes) and fills msgs[:n]. The errno of a failed
// recvmmsg is returned unwrapped; poller errors as they come.
func (r *receiver) read(msgs []Message) (int, error) {
	if len(msgs) > len(r.hdrs) {
		r.hdrs = make([]unix.Mmsghdr, len(msgs))
		r.iovs = make([]unix.Iovec, len(msgs))
		r.names = make([]unix.RawSockaddrNetlink, len(msgs))
	}
	for i := range msgs {
		iov, h := &r.iovs[i], &r.hdrs[i].Hdr
		iov.Base = nil
		if len(msgs[i].Buf) > 0 {
			iov.Base = &msgs[i].Buf[0]
		}
		iov.SetLen(len(msgs[i].Buf))
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Namelen = unix.SizeofSockaddrNetlink
		h.Iov = iov
		h.SetIovlen(1)
	}
	r.vlen = len(msgs)
	r.err = nil
	err := r.s.rc.Read(r.fn)
	for i := range msgs {
		r.iovs[i].Base = nil // do not keep caller buffers alive
	}
	if err == nil {
		err = r.err
	}
	if err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	for i := range r.n {
		m := &msgs[i]
		m.N = int(r.hdrs[i].Len)
		m.Truncated = r.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0
		m.PortID = r.names[i].Pid
	}
	return r.n, nil
}

func (r *receiver) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.vlen),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait for the poller
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// recvBlocking waits in recvmmsg for the first datagram (MSG_WAITFORONE),
// up to SO_RCVTIMEO at a time: until the deadline, and blockingPoll at
// most, so that it sees Close. It always completes the read: a blocking
// sock has no poller to wait on.
func (r *receiver) recvBlocking(fd uintptr) bool {
	for {
		if r.s.closing.Load() {
			r.err = os.ErrClosed
			return true
		}
		timeo := blockingPoll
		if dl := r.s.deadline.Load(); dl != 0 {
			left := time.Duration(dl - time.Now().UnixNano())
			if left <= 0 {
				r.err = os.ErrDeadlineExceeded
				return true
			}
			timeo = min(timeo, max(left, time.Microsecond)) // 0 would mean forever
		}
		if timeo != r.s.rcvtimeo {
			if err := setRcvTimeo(int(fd), timeo); err != nil {
				r.err = err
				return true
			}
			r.s.rcvtimeo = timeo
		}
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.vlen),
			unix.MSG_WAITFORONE, 0, 0)
		switch e {
		case unix.EINTR, unix.EAGAIN: // EAGAIN: SO_RCVTIMEO passed
			continue
		}
		r.n, r.errno = int(n), e
		return true
	}
}

func setRcvTimeo(fd int, d time.Duration) error {
	tv := unix.NsecToTimeval(int64(d))
	return os.NewSyscallError("setsockopt SO_RCVTIMEO", unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
}
