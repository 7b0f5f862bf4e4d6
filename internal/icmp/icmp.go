// Package icmp builds, sends and parses the IPv4 ICMP packets that drive the imp2
// hook in tests, floods, replays and emulation: the one builder of them
// (AppendPacket, AppendEcho, the checksum) and the one parser, which reads
// the fields the module reads and by the module's rules.
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

// IPv4 is what ParseIPv4 reads of an IPv4 packet carrying ICMP.
type IPv4 struct {
	Src, Dst netip.Addr
	// TotalLen is the IP header's total length field.
	TotalLen uint16
	// ICMP is the ICMP message, at least HeaderLen bytes; nil when the
	// packet is a fragment other than the first (offset not 0) or too
	// short for an ICMP header: the module reports no ICMP fields then.
	ICMP []byte
}

// ProtocolICMP is the IPv4 protocol number of ICMP.
const ProtocolICMP = 1

// ParseIPv4 reads an IPv4 packet carrying ICMP; other packets (not IPv4,
// another protocol, a header shorter than its length field says) are an
// error.
func ParseIPv4(b []byte) (IPv4, error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return IPv4{}, fmt.Errorf("icmp: not an IPv4 packet (%d bytes)", len(b))
	}
	if b[9] != ProtocolICMP {
		return IPv4{}, fmt.Errorf("icmp: IPv4 protocol %d, want %d (ICMP)", b[9], ProtocolICMP)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || ihl > len(b) {
		return IPv4{}, fmt.Errorf("icmp: IPv4 header length %d in a %d-byte packet", ihl, len(b))
	}
	p := IPv4{
		Src:      netip.AddrFrom4([4]byte(b[12:16])),
		Dst:      netip.AddrFrom4([4]byte(b[16:20])),
		TotalLen: binary.BigEndian.Uint16(b[2:4]),
	}
	// The fragment offset (low 13 bits of bytes 6-7): only the first
	// fragment carries the ICMP header.
	if binary.BigEndian.Uint16(b[6:8])&0x1fff == 0 && len(b)-ihl >= HeaderLen {
		p.ICMP = b[ihl:]
	}
	return p, nil
}
