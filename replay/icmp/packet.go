package icmp

import (
	"encoding/binary"

	"github.com/imp2/imp2/imp2"
	inicmp "github.com/imp2/imp2/internal/icmp"
)

// Packets: one IPv4 packet per recorded event, built here to
// the byte (header and ICMP checksums included) and sent on a packet
// socket, so that the kernel changes nothing: not the source, not the
// total length, not the IP id, and no route decides where it goes.
const (
	ipHeaderLen  = 20
	minPacketLen = ipHeaderLen + inicmp.HeaderLen // 28
	// maxPacketLen is the veth MTU: a recorded ip_len above it (a
	// reassembled or GSO packet) cannot be sent as one frame.
	maxPacketLen = 1500
	// defaultPacketLen is used when the event has no ip_len (legacy
	// payload) or an unusable one: ping's 84 bytes.
	defaultPacketLen = 84
	ipTTL            = 64
	protoICMP        = 1
	// fragOffset is the offset (in 8-byte units) of the non-first fragment
	// sent for a recorded event whose ICMP fields were not valid: the
	// module then reports it without IMP2_EVF_ICMP, as it did.
	fragOffset = 185
	// legacyID is the echo id of packets for legacy (8-byte) events, which
	// recorded no ICMP fields; their sequence is the event index.
	legacyID = 0x1e92
)

// packetSpec is what one packet carries.
type packetSpec struct {
	src, dst  [4]byte
	typ, code uint8
	id, seq   uint16 // ICMP header bytes 4-7 (echo id and sequence)
	ipID      uint16
	length    int  // IPv4 total length
	fragment  bool // non-first fragment (no ICMP header seen by the hook)
	lengthSet bool // length came from the recording
}

// specFor maps a recorded event to a packet. idx numbers the packets of
// the run (IP id, and the sequence of legacy events).
func specFor(e *imp2.Event, idx uint64) packetSpec {
	p := packetSpec{src: e.Src.As4(), dst: e.Dest.As4(), ipID: uint16(idx), length: defaultPacketLen}
	if !e.Extended {
		p.typ, p.id, p.seq = inicmp.TypeEchoRequest, legacyID, uint16(idx)
		return p
	}
	if n := int(e.IPLen); n >= minPacketLen && n <= maxPacketLen {
		p.length, p.lengthSet = n, true
	}
	if e.Flags&imp2.EventFlagICMP == 0 {
		p.fragment = true
		return p
	}
	p.typ, p.code, p.id, p.seq = e.ICMPType, e.ICMPCode, e.ICMPID, e.ICMPSeq
	return p
}

// AppendPacket appends the IPv4 packet that the output sends for event e,
// the idx-th packet of a replay (numbered from 0): the IP id, and the echo
// sequence of a legacy event, come from idx.
func AppendPacket(b []byte, e *imp2.Event, idx uint64) []byte {
	p := specFor(e, idx)
	return appendPacket(b, &p)
}

// appendPacket appends the IPv4 packet described by p: a 20-byte header
// (no options, TTL 64, protocol ICMP, header checksum) and an ICMP message
// (type, code, checksum, bytes 4-7 = id and sequence, zero payload up to
// p.length). A fragment carries zero bytes instead of an ICMP header.
func appendPacket(b []byte, p *packetSpec) []byte {
	n := max(p.length, minPacketLen)
	start := len(b)
	b = append(b, make([]byte, n)...)
	h := b[start : start+ipHeaderLen]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(n))
	binary.BigEndian.PutUint16(h[4:], p.ipID)
	if p.fragment {
		binary.BigEndian.PutUint16(h[6:], fragOffset)
	}
	h[8] = ipTTL
	h[9] = protoICMP
	copy(h[12:16], p.src[:])
	copy(h[16:20], p.dst[:])
	binary.BigEndian.PutUint16(h[10:], inicmp.Checksum(h))
	if p.fragment {
		return b
	}
	m := b[start+ipHeaderLen : start+n]
	m[0], m[1] = p.typ, p.code
	binary.BigEndian.PutUint16(m[4:], p.id)
	binary.BigEndian.PutUint16(m[6:], p.seq)
	binary.BigEndian.PutUint16(m[2:], inicmp.Checksum(m))
	return b
}
