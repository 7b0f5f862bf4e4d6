package nlsock

import (
	"errors"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestReadModes sends three datagrams over NETLINK_USERSOCK to a Sock of
// each mode: one Read returns them all; then a read deadline ends an empty
// Read, and a blocking Read waits for the deadline, not for Poll.
func TestReadModes(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		fd, err := unix.Socket(unix.AF_NETLINK, SocketType(blocking), unix.NETLINK_USERSOCK)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			t.Fatal(err)
		}
		sa, _ := unix.Getsockname(fd)
		s, err := New(fd, blocking)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Control(func(fd int) error {
			fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			if nonblock := fl&unix.O_NONBLOCK != 0; err != nil || nonblock == blocking {
				t.Errorf("blocking %v: O_NONBLOCK %v (%v)", blocking, nonblock, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		tx, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_USERSOCK)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(tx)
		if err := unix.Bind(tx, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			t.Fatal(err)
		}
		txa, _ := unix.Getsockname(tx)
		txPort := txa.(*unix.SockaddrNetlink).Pid
		for i := range 3 {
			msg := make([]byte, unix.NLMSG_HDRLEN+4*i)
			*(*uint32)(unsafe.Pointer(&msg[0])) = uint32(len(msg))
			if err := unix.Sendto(tx, msg, 0, sa); err != nil {
				t.Fatal(err)
			}
		}
		bufs := make([][256]byte, 8)
		b := NewBatch(len(bufs), true)
		for i := range bufs {
			b.Set(i, bufs[i][:])
		}
		n, err := s.Read(b, len(bufs))
		if err != nil || n != 3 {
			t.Fatalf("blocking %v: Read = %d, %v; want the 3 queued", blocking, n, err)
		}
		for i := range n {
			if b.Len(i) != unix.NLMSG_HDRLEN+4*i || b.Truncated(i) {
				t.Errorf("blocking %v: datagram %d of %d bytes (truncated %v)", blocking, i, b.Len(i), b.Truncated(i))
			}
			if b.PortID(i) != txPort {
				t.Errorf("blocking %v: datagram %d from port %d, want the sender's %d", blocking, i, b.PortID(i), txPort)
			}
		}

		s.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		start := time.Now()
		if _, err := s.Read(b, len(bufs)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("blocking %v: Read of an empty queue past the deadline: %v", blocking, err)
		}
		if el := time.Since(start); blocking && el >= Poll {
			t.Errorf("blocking Read waited %v for a deadline 5 ms away", el)
		}
		if !blocking {
			continue
		}
		// A datagram already queued is taken without a setsockopt.
		before := s.timeo
		if err := unix.Sendto(tx, make([]byte, unix.NLMSG_HDRLEN), 0, sa); err != nil {
			t.Fatal(err)
		}
		s.SetReadDeadline(time.Now().Add(40 * time.Millisecond))
		if _, err := s.Read(b, len(bufs)); err != nil || s.timeo != before {
			t.Errorf("read of a queued datagram: %v, SO_RCVTIMEO %v -> %v; want it left alone", err, before, s.timeo)
		}
		// The same relative deadline before every read that waits sets
		// SO_RCVTIMEO once, not per read.
		changes, last := 0, s.timeo
		for i := range 3 {
			go func() {
				time.Sleep(time.Millisecond)
				unix.Sendto(tx, make([]byte, unix.NLMSG_HDRLEN), 0, sa)
			}()
			start := time.Now()
			s.SetReadDeadline(start.Add(40*time.Millisecond - time.Duration(i)*time.Millisecond))
			_, err := s.Read(b, len(bufs))
			if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 30*time.Millisecond {
				// Near the deadline the read rightly sets a shorter
				// SO_RCVTIMEO for what is left.
				t.Logf("read %d: the datagram came near or after the deadline (a loaded machine); not checked", i)
				last = s.timeo
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.timeo != last {
				changes, last = changes+1, s.timeo
				if s.timeo > 40*time.Millisecond || s.timeo < 38*time.Millisecond {
					t.Errorf("read %d: SO_RCVTIMEO %v, want the deadline's 38-40 ms", i, s.timeo)
				}
			}
		}
		if changes > 1 {
			t.Errorf("SO_RCVTIMEO set %d times for the same relative deadline, want once", changes)
		}
	}
}
