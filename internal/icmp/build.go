package icmp

import "encoding/binary"

// Lengths of the IPv4 packets AppendPacket builds.
const (
	// IPv4HeaderLen is the length of an IPv4 header without options.
	IPv4HeaderLen = 20
	// MinPacketLen is the shortest IPv4 packet with an ICMP header.
	MinPacketLen = IPv4HeaderLen + HeaderLen
)

// DefaultTTL is the TTL of a Packet that names none, Linux's default.
const DefaultTTL = 64

// Packet describes an IPv4 packet carrying one ICMP message, built to the
// byte by AppendPacket for a socket that sends it as it is (a packet
// socket, or a raw socket with IP_HDRINCL): the kernel then changes
// nothing, neither the source, nor the total length, nor the IP id.
type Packet struct {
	Src, Dst [4]byte
	// IPID is the IP header's identification.
	IPID uint16
	// TTL is the IP time to live; 0 means DefaultTTL.
	TTL uint8
	// Len is the total length; the ICMP message is padded with zeros up
	// to it. Less than MinPacketLen means MinPacketLen.
	Len int
	// FragOffset is the fragment offset in 8-byte units. A packet with
	// one is a later fragment: it carries zeros where the ICMP header
	// would be, as such a fragment does for the module's hook.
	FragOffset uint16
	// Type, Code, ID and Seq are the ICMP message's first bytes (ID and
	// Seq, bytes 4-7, are an echo's identifier and sequence number).
	Type, Code uint8
	ID, Seq    uint16
}

// AppendPacket appends the IPv4 packet p describes: a 20-byte header
// (no options, protocol ICMP, header checksum filled in) and the ICMP
// message (checksum filled in) or, for a later fragment, zeros.
func AppendPacket(b []byte, p *Packet) []byte {
	n := max(p.Len, MinPacketLen)
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	start := len(b)
	b = append(b, make([]byte, n)...)
	h := b[start : start+IPv4HeaderLen]
	h[0] = 4<<4 | IPv4HeaderLen/4
	binary.BigEndian.PutUint16(h[2:], uint16(n))
	binary.BigEndian.PutUint16(h[4:], p.IPID)
	binary.BigEndian.PutUint16(h[6:], p.FragOffset&0x1fff)
	h[8] = ttl
	h[9] = ProtocolICMP
	copy(h[12:16], p.Src[:])
	copy(h[16:20], p.Dst[:])
	binary.BigEndian.PutUint16(h[10:], Checksum(h))
	if p.FragOffset == 0 {
		putMessage(b[start+IPv4HeaderLen:], p.Type, p.Code, p.ID, p.Seq)
	}
	return b
}

// putMessage writes an ICMP header into m, whose payload follows it
// already, and fills in the checksum over the whole message.
func putMessage(m []byte, typ, code uint8, id, seq uint16) {
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	binary.BigEndian.PutUint16(m[2:], Checksum(m))
}

// Sum is the ones' complement sum of b's big-endian 16-bit words (an odd
// last byte padded with zero), folded to 16 bits but not complemented. The
// sums of a message's parts, each starting at an even offset, add up to
// the sum of the whole: a sender that changes a few fields of a prepared
// packet sums only those (RFC 1071's incremental update).
func Sum(b []byte) uint32 {
	var s uint64
	// 8 bytes at a time: 2^16 ≡ 1 modulo 0xffff, so a 32-bit word adds
	// the same as its two halves.
	for ; len(b) >= 8; b = b[8:] {
		v := binary.BigEndian.Uint64(b)
		s += v>>32 + v&0xffffffff
	}
	for ; len(b) >= 2; b = b[2:] {
		s += uint64(b[0])<<8 | uint64(b[1])
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint32(s)
}

// Fold folds a Sum into 16 bits and complements it: the checksum field.
func Fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
