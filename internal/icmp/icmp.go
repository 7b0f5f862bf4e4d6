// Package icmp sends ICMP echo requests from a raw socket: the traffic that
// drives the imp2 hook in tests and floods.
package icmp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Echo types.
const (
	TypeEchoReply   = 0
	TypeEchoRequest = 8
)

// HeaderLen is the length of an ICMP echo header.
const HeaderLen = 8

// AppendEcho appends an ICMP echo request with the given id, sequence and
// payload, checksum filled in.
func AppendEcho(b []byte, id, seq uint16, payload []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	b = append(b, payload...)
	putMessage(b[start:], TypeEchoRequest, 0, id, seq)
	return b
}

// Checksum is the Internet checksum (RFC 1071) of b.
func Checksum(b []byte) uint16 { return Fold(Sum(b)) }

// ParseEcho reads type, id and sequence from an ICMP message.
func ParseEcho(b []byte) (typ uint8, id, seq uint16, err error) {
	if len(b) < HeaderLen {
		return 0, 0, 0, fmt.Errorf("icmp: %d bytes, want at least %d", len(b), HeaderLen)
	}
	return b[0], binary.BigEndian.Uint16(b[4:6]), binary.BigEndian.Uint16(b[6:8]), nil
}

func checkIPv4(a netip.Addr) error {
	if !a.Is4() {
		return fmt.Errorf("icmp: %v is not an IPv4 address", a)
	}
	return nil
}
