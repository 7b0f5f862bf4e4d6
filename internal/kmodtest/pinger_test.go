package kmodtest

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/icmp"
)

// pinger sends echo requests to one IPv4 address from a raw socket
// (CAP_NET_RAW). The kernel builds the IP header.
type pinger struct {
	fd  int
	dst unix.SockaddrInet4
	buf []byte
}

// newPinger opens a raw ICMP socket towards dst.
func newPinger(dst netip.Addr) (*pinger, error) {
	if !dst.Is4() {
		return nil, fmt.Errorf("ping: %v is not an IPv4 address", dst)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, fmt.Errorf("ping: raw socket: %w", err)
	}
	return &pinger{fd: fd, dst: unix.SockaddrInet4{Addr: dst.As4()}}, nil
}

// Send sends one echo request.
func (s *pinger) Send(id, seq uint16, payload []byte) error {
	s.buf = icmp.AppendEcho(s.buf[:0], id, seq, payload)
	if err := unix.Sendto(s.fd, s.buf, 0, &s.dst); err != nil {
		return fmt.Errorf("ping: send to %v: %w", netip.AddrFrom4(s.dst.Addr), err)
	}
	return nil
}

// Close closes the socket.
func (s *pinger) Close() error {
	return unix.Close(s.fd)
}
