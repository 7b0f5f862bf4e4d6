package kmodtest

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func monotonicNs(t *testing.T) uint64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

// rawSocket opens a bare netlink socket: a client that speaks the protocol
// by hand, as an attacker or a buggy program would.
func rawSocket(t *testing.T, family int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, family)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	return fd
}

func send(t *testing.T, fd int, b []byte) {
	t.Helper()
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("sendto kernel: %v", err)
	}
}

// loUp brings the loopback device of the calling thread's namespace up.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// flood sends echo requests in bursts until stop closes (at most 30 s),
// then reports how many it sent.
func flood(stop <-chan struct{}, sent chan<- int) {
	n := 0
	defer func() { sent <- n }()
	s, err := newPinger(netip.MustParseAddr("127.1.2.3"))
	if err != nil {
		return
	}
	defer s.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			return
		default:
		}
		for i := 0; i < 50; i++ {
			if s.Send(0x4c09, uint16(n), nil) == nil {
				n++
			}
		}
		time.Sleep(time.Millisecond)
	}
}
