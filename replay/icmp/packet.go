package icmp

import (
	"github.com/imp2/imp2/imp2"
	inicmp "github.com/imp2/imp2/internal/icmp"
)

// Packets: one IPv4 packet per recorded event, built to the byte by
// internal/icmp (header and ICMP checksums included) and sent on a packet
// socket, so that the kernel changes nothing: not the source, not the
// total length, not the IP id, and no route decides where it goes.
const (
	// maxPacketLen is the veth MTU: a recorded ip_len above it (a
	// reassembled or GSO packet) cannot be sent as one frame.
	maxPacketLen = 1500
	// defaultPacketLen is used when the event has no ip_len (legacy
	// payload) or an unusable one: ping's 84 bytes.
	defaultPacketLen = 84
	// fragOffset is the offset (in 8-byte units) of the non-first fragment
	// sent for a recorded event whose ICMP fields were not valid: the
	// module then reports it without IMP2_EVF_ICMP, as it did.
	fragOffset = 185
	// legacyID is the echo id of packets for legacy (8-byte) events, which
	// recorded no ICMP fields; their sequence is the event index.
	legacyID = 0x1e92
)

// packetSpec is the packet sent for one event.
type packetSpec struct {
	inicmp.Packet
	lengthSet bool // Len came from the recording
}

// fragment says whether the packet is a non-first fragment (no ICMP
// header seen by the hook).
func (p *packetSpec) fragment() bool { return p.FragOffset != 0 }

// specFor maps a recorded event to a packet. idx numbers the packets of
// the run (IP id, and the sequence of legacy events).
func specFor(e *imp2.Event, idx uint64) packetSpec {
	p := packetSpec{Packet: inicmp.Packet{Src: e.Src.As4(), Dst: e.Dest.As4(), IPID: uint16(idx), Len: defaultPacketLen}}
	if !e.Extended {
		p.Type, p.ID, p.Seq = inicmp.TypeEchoRequest, legacyID, uint16(idx)
		return p
	}
	if n := int(e.IPLen); n >= inicmp.MinPacketLen && n <= maxPacketLen {
		p.Len, p.lengthSet = n, true
	}
	if e.Flags&imp2.EventFlagICMP == 0 {
		p.FragOffset = fragOffset
		return p
	}
	p.Type, p.Code, p.ID, p.Seq = e.ICMPType, e.ICMPCode, e.ICMPID, e.ICMPSeq
	return p
}

// AppendPacket appends the IPv4 packet that the output sends for event e,
// the idx-th packet of a replay (numbered from 0): the IP id, and the echo
// sequence of a legacy event, come from idx.
func AppendPacket(b []byte, e *imp2.Event, idx uint64) []byte {
	p := specFor(e, idx)
	return inicmp.AppendPacket(b, &p.Packet)
}
