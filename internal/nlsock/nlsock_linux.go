// Package nlsock reads datagram sockets with recvmmsg, either through the Go
// runtime's poller or blocking in the kernel like a C consumer. The two
// imp2 readers (imp2.Conn and nflog.Conn) share it, and imp2-bench's
// emulated hook reads its raw ICMP socket with it.
//
// Why blocking exists: a socket in the poller is on an epoll list, and
// every datagram queued to it then runs ep_poll_callback in the sender's
// context — for a kernel producer, in the softirq that unicasts. perf put
// sock_def_readable at 12% of a top-speed user-space sender's time with a
// polled receiver, 2% with a blocking one. The price: a goroutine back
// from a blocking recvmmsg needs a P again, and in a busy process it may
// wait for one (see imp2.Config.Blocking).
package nlsock

import (
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Poll is the longest a blocking read sleeps in the kernel (SO_RCVTIMEO)
// before it looks at Close again.
const Poll = 50 * time.Millisecond

// Sock is a netlink socket and its reader. Read is for one goroutine at a
// time; SetReadDeadline, Control and Close are for any.
type Sock struct {
	f        *os.File
	rc       syscall.RawConn
	blocking bool
	deadline atomic.Int64 // blocking: ns since the epoch; 0 for none
	closing  atomic.Bool  // blocking: Close has begun

	// Owned by the reader.
	timeo time.Duration  // blocking: SO_RCVTIMEO as last set
	hdrs  []unix.Mmsghdr // of the Batch being read
	n     int
	errno syscall.Errno
	err   error
	fn    func(fd uintptr) bool // recvPolled or recvBlocking, bound once
}

// New takes over fd, a netlink socket created with SOCK_NONBLOCK unless
// blocking.
func New(fd int, blocking bool) (*Sock, error) {
	s := &Sock{blocking: blocking}
	s.fn = s.recvPolled
	if blocking {
		if err := setRcvTimeo(fd, Poll); err != nil {
			unix.Close(fd)
			return nil, err
		}
		s.timeo, s.fn = Poll, s.recvBlocking
	}
	// NewFile registers a non-blocking fd with the poller and leaves a
	// blocking one out.
	s.f = os.NewFile(uintptr(fd), "netlink")
	var err error
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
}

// SocketType is the type argument of socket(2) for a Sock of that mode.
func SocketType(blocking bool) int {
	if blocking {
		return unix.SOCK_RAW | unix.SOCK_CLOEXEC
	}
	return unix.SOCK_RAW | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
}

// Read waits until a datagram is queued (or the deadline passes, or the
// socket closes), receives up to n of them into b with one recvmmsg and
// returns how many. The errno of a failed recvmmsg is returned as a bare
// syscall.Errno; otherwise os.ErrDeadlineExceeded, os.ErrClosed or the
// poller's error. It allocates nothing.
func (s *Sock) Read(b *Batch, n int) (int, error) {
	s.hdrs, s.err = b.prepare(n), nil
	err := s.rc.Read(s.fn)
	s.hdrs = nil
	switch {
	case err != nil && s.closing.Load():
		return 0, os.ErrClosed // the file's own "use of closed file"
	case err != nil:
		return 0, err
	case s.err != nil:
		return 0, s.err
	case s.errno != 0:
		return 0, s.errno
	}
	return s.n, nil
}

// recvmmsg receives with the runtime told of the syscall, which may
// sleep.
func (s *Sock) recvmmsg(fd uintptr, flags int) syscall.Errno {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(len(s.hdrs)),
		uintptr(flags), 0, 0)
	s.n, s.errno = int(n), e
	return e
}

// recvQueued receives what is queued without sleeping, as a raw syscall:
// the runtime is not told, so it does not hand the goroutine's P to
// another thread while a long batch is copied (sysmon does after 20 µs,
// and a full batch of 128 takes longer), which cost the recorder a
// thread wake-up and a context switch per batch (8% of its CPU per frame
// behind a top-speed sender, 4 interleaved rounds). It never sleeps; a
// batch of the most datagrams a Batch takes (Options.Batch, 1024) holds
// off a garbage collection's stop for about a millisecond at worst.
func (s *Sock) recvQueued(fd uintptr) syscall.Errno {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(len(s.hdrs)),
		unix.MSG_DONTWAIT, 0, 0)
	s.n, s.errno = int(n), e
	return e
}

func (s *Sock) recvPolled(fd uintptr) bool {
	for {
		switch s.recvQueued(fd) {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait for the poller
		}
		return true
	}
}

// recvBlocking takes what is queued (recvQueued); only when nothing is
// does it wait in recvmmsg for the first datagram (MSG_WAITFORONE),
// up to SO_RCVTIMEO at a time: about until the deadline, and Poll at most,
// so that it sees Close. It always completes the read: a blocking socket
// has no poller to wait on.
//
// SO_RCVTIMEO costs a setsockopt, so it is changed only when it would end
// the wait more than timeoSlack after the deadline, or wake the reader
// before half of the time left: a reader that sets the same relative
// deadline before every read (imp2-bench does) sets it once.
func (s *Sock) recvBlocking(fd uintptr) bool {
	for first := true; ; first = false {
		if s.closing.Load() {
			s.err = os.ErrClosed
			return true
		}
		want := Poll
		if dl := s.deadline.Load(); dl != 0 {
			left := time.Duration(dl - time.Now().UnixNano())
			if left <= 0 {
				s.err = os.ErrDeadlineExceeded
				return true
			}
			want = min(want, max(left, time.Microsecond)) // 0 would mean forever
		}
		if first {
			if e := s.recvQueued(fd); e != unix.EAGAIN && e != unix.EINTR {
				return true
			}
		}
		if want < s.timeo-timeoSlack || s.timeo < want/2 {
			if err := setRcvTimeo(int(fd), want); err != nil {
				s.err = err
				return true
			}
			s.timeo = want
		}
		switch s.recvmmsg(fd, unix.MSG_WAITFORONE) {
		case unix.EINTR, unix.EAGAIN: // EAGAIN: SO_RCVTIMEO passed
			continue
		}
		return true
	}
}

// timeoSlack is how late a blocking read may notice its deadline rather
// than set SO_RCVTIMEO again; the kernel keeps it in jiffies (4 ms at
// HZ=250) anyway.
const timeoSlack = 5 * time.Millisecond

// SetReadDeadline sets the deadline of Read; the zero time means none. A
// blocking read notices it within timeoSlack plus a jiffy.
func (s *Sock) SetReadDeadline(t time.Time) error {
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

// Control runs fn on the file descriptor.
func (s *Sock) Control(fn func(fd int) error) error {
	var ferr error
	if err := s.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// RawRead runs f on the file descriptor once the socket may be readable,
// again each time f returns false, as syscall.RawConn.Read does: for a
// reader that needs what Read does not offer (peeking at a datagram's
// length, ancillary data). Polled sockets only.
func (s *Sock) RawRead(f func(fd uintptr) bool) error { return s.rc.Read(f) }

// RawControl runs f on the file descriptor; with a bound method value as
// f it allocates nothing (for hot send paths).
func (s *Sock) RawControl(f func(fd uintptr)) error { return s.rc.Control(f) }

// Close closes the socket; a blocking Read in progress returns within Poll.
func (s *Sock) Close() error {
	s.closing.Store(true)
	return s.f.Close()
}

func setRcvTimeo(fd int, d time.Duration) error {
	tv := unix.NsecToTimeval(int64(d))
	return os.NewSyscallError("setsockopt SO_RCVTIMEO", unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
}
