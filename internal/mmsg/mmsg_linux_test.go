//go:build linux

package mmsg

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// udpPair is a UDP socket bound to loopback and a socket to send from.
func udpPair(t *testing.T) (rx, tx int, sa unix.RawSockaddrInet4) {
	t.Helper()
	rx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(rx) })
	if err := unix.Bind(rx, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	name, err := unix.Getsockname(rx)
	if err != nil {
		t.Fatal(err)
	}
	port := name.(*unix.SockaddrInet4).Port
	tx, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(tx) })
	sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{127, 0, 0, 1}, Port: uint16(port>>8 | port<<8&0xff00)}
	return rx, tx, sa
}

func recvAll(t *testing.T, fd int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return got
		}
		got = append(got, bytes.Clone(buf[:n]))
	}
}

// A batch sends every datagram in order to the address it is given, and
// stops at the first one the kernel refuses, naming its errno: the
// caller can skip it and send the rest.
func TestSendStopsAtFirstRefused(t *testing.T) {
	rx, tx, sa := udpPair(t)
	var b Batch
	b.Grow(4)
	msgs := [][]byte{[]byte("a"), []byte("bb"), make([]byte, 70000), []byte("dddd")}
	for i, m := range msgs {
		b.Set(i, m)
	}
	SetAddr(&b, len(msgs), &sa)
	n, errno := b.Send(uintptr(tx), 0, 4, 0)
	if n != 2 || errno != unix.EMSGSIZE {
		t.Fatalf("Send = %d, %v; want 2, EMSGSIZE (the 70000-byte datagram)", n, errno)
	}
	n, errno = b.Send(uintptr(tx), 3, 4, 0)
	if n != 1 || errno != 0 {
		t.Fatalf("Send of the rest = %d, %v; want 1, 0", n, errno)
	}
	got := recvAll(t, rx)
	want := [][]byte{msgs[0], msgs[1], msgs[3]}
	if len(got) != len(want) {
		t.Fatalf("received %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("datagram %d = %q, want %q", i, got[i], want[i])
		}
	}
	b.Release(len(msgs))
	for i := range b.iovs {
		if b.iovs[i].Base != nil {
			t.Errorf("iovec %d still points at a caller's buffer after Release", i)
		}
	}
}

// Sending a batch again allocates nothing.
func TestSendAllocs(t *testing.T) {
	rx, tx, sa := udpPair(t)
	var b Batch
	b.Grow(8)
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 64)
	}
	buf := make([]byte, 64)
	n := testing.AllocsPerRun(50, func() {
		for i := range bufs {
			b.Set(i, bufs[i])
		}
		SetAddr(&b, len(bufs), &sa)
		if n, e := b.Send(uintptr(tx), 0, len(bufs), 0); n != len(bufs) || e != 0 {
			t.Fatalf("Send = %d, %v", n, e)
		}
		for range bufs {
			unix.Read(rx, buf)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
}
