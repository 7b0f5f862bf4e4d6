package icmp

import (
	"bytes"
	"encoding/binary"
	"testing"

	xipv4 "golang.org/x/net/ipv4"
)

// AppendPacket appends after what b holds a packet that x/net and
// ParseIPv4 read back field by field, whose checksums verify and whose ICMP payload is zeros
// up to the total length; a later fragment carries no ICMP header.
func TestAppendPacket(t *testing.T) {
	for _, p := range []Packet{
		{Src: [4]byte{203, 0, 113, 7}, Dst: [4]byte{192, 0, 2, 1}, IPID: 0xbeef, Len: 84, Type: TypeEchoRequest, ID: 0x1234, Seq: 0xfffe},
		{Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 0, 0, 2}, TTL: 1, Len: 1500, Type: 3, Code: 1},
		{Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 0, 0, 2}, Len: 3, Type: TypeEchoReply}, // shorter than a header: MinPacketLen
		{Src: [4]byte{192, 0, 2, 5}, Dst: [4]byte{203, 0, 113, 5}, Len: 600, FragOffset: 185, Type: 8},
	} {
		b := AppendPacket([]byte{0xee}, &p)
		if b[0] != 0xee {
			t.Fatalf("%+v: the byte before the packet was overwritten", p)
		}
		b = b[1:]
		wantLen, wantTTL := max(p.Len, MinPacketLen), int(p.TTL)
		if wantTTL == 0 {
			wantTTL = DefaultTTL
		}
		h, err := xipv4.ParseHeader(b)
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if h.Version != 4 || h.Len != IPv4HeaderLen || h.TotalLen != wantLen || len(b) != wantLen || h.Protocol != 1 ||
			h.TTL != wantTTL || h.ID != int(p.IPID) || h.FragOff != int(p.FragOffset) || h.Flags != 0 ||
			!bytes.Equal(h.Src.To4(), p.Src[:]) || !bytes.Equal(h.Dst.To4(), p.Dst[:]) {
			t.Errorf("%+v: header %v, %d bytes", p, h, len(b))
		}
		if c := Checksum(b[:IPv4HeaderLen]); c != 0 {
			t.Errorf("%+v: IP header checksum does not verify (%#x)", p, c)
		}
		if r, err := ParseIPv4(b); err != nil || r.Src.As4() != p.Src || r.Dst.As4() != p.Dst ||
			int(r.TotalLen) != wantLen || (r.ICMP == nil) != (p.FragOffset != 0) {
			t.Errorf("%+v: ParseIPv4 reads %+v, %v", p, r, err)
		}
		m := b[IPv4HeaderLen:]
		if p.FragOffset != 0 {
			if !bytes.Equal(m, make([]byte, len(m))) {
				t.Errorf("%+v: a later fragment carries % x, want zeros", p, m[:HeaderLen])
			}
			continue
		}
		if c := Checksum(m); c != 0 {
			t.Errorf("%+v: ICMP checksum does not verify (%#x)", p, c)
		}
		got := [4]uint16{uint16(m[0]), uint16(m[1]), binary.BigEndian.Uint16(m[4:]), binary.BigEndian.Uint16(m[6:])}
		if want := [4]uint16{uint16(p.Type), uint16(p.Code), p.ID, p.Seq}; got != want {
			t.Errorf("%+v: type/code/id/seq %v, want %v", p, got, want)
		}
		if !bytes.Equal(m[HeaderLen:], make([]byte, len(m)-HeaderLen)) {
			t.Errorf("%+v: payload not zeros", p)
		}
	}
}

// Building into a buffer with room allocates nothing.
func TestAppendPacketAllocs(t *testing.T) {
	p := Packet{Len: 1500, Type: TypeEchoRequest}
	buf := make([]byte, 0, 1500)
	if n := testing.AllocsPerRun(100, func() { buf = AppendPacket(buf[:0], &p) }); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
}

// The sums of parts at even offsets fold to the checksum of the whole, so
// changed fields can be summed alone.
func TestSumOfParts(t *testing.T) {
	b := AppendEcho(nil, 0xfedc, 0xba98, []byte("the payload, odd."))
	for _, cut := range []int{0, 2, 4, 8, 12, len(b) - 1} {
		if got := Fold(Sum(b[:cut]) + Sum(b[cut:])); got != 0 {
			t.Errorf("cut at %d: parts fold to %#x over a checksummed message, want 0", cut, got)
		}
	}
}
