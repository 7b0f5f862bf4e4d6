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
		for i := range 3 {
			msg := make([]byte, unix.NLMSG_HDRLEN+4*i)
			*(*uint32)(unsafe.Pointer(&msg[0])) = uint32(len(msg))
			if err := unix.Sendto(tx, msg, 0, sa); err != nil {
				t.Fatal(err)
			}
		}
		bufs := make([][256]byte, 8)
		iovs := make([]unix.Iovec, 8)
		hdrs := make([]unix.Mmsghdr, 8)
		for i := range hdrs {
			iovs[i].Base = &bufs[i][0]
			iovs[i].SetLen(len(bufs[i]))
			hdrs[i].Hdr.Iov = &iovs[i]
			hdrs[i].Hdr.SetIovlen(1)
		}
		n, err := s.Read(hdrs)
		if err != nil || n != 3 {
			t.Fatalf("blocking %v: Read = %d, %v; want the 3 queued", blocking, n, err)
		}
		for i := range n {
			if hdrs[i].Len != uint32(unix.NLMSG_HDRLEN+4*i) {
				t.Errorf("blocking %v: datagram %d of %d bytes", blocking, i, hdrs[i].Len)
			}
		}

		s.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		start := time.Now()
		if _, err := s.Read(hdrs); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("blocking %v: Read of an empty queue past the deadline: %v", blocking, err)
		}
		if el := time.Since(start); blocking && el >= Poll {
			t.Errorf("blocking Read waited %v for a deadline 5 ms away", el)
		}
		if !blocking {
			continue
		}
		// The same relative deadline before every read sets SO_RCVTIMEO
		// once, not per read.
		for i := range 3 {
			if err := unix.Sendto(tx, make([]byte, unix.NLMSG_HDRLEN), 0, sa); err != nil {
				t.Fatal(err)
			}
			s.SetReadDeadline(time.Now().Add(20*time.Millisecond - time.Duration(i)*time.Millisecond))
			if _, err := s.Read(hdrs); err != nil {
				t.Fatal(err)
			}
			if s.timeo > 20*time.Millisecond || s.timeo < 19*time.Millisecond {
				t.Errorf("read %d: SO_RCVTIMEO %v, want the first deadline's 20 ms kept", i, s.timeo)
			}
		}
	}
}
