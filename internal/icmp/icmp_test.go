package icmp

import (
	"net/netip"
	"testing"
)

func TestEchoRoundTripAndChecksum(t *testing.T) {
	b := AppendEcho(nil, 0x1234, 0xfffe, []byte("abc"))
	if Checksum(b) != 0 {
		t.Errorf("checksum over a checksummed message = %#x, want 0", Checksum(b))
	}
	typ, id, seq, err := ParseEcho(b)
	if err != nil || typ != TypeEchoRequest || id != 0x1234 || seq != 0xfffe {
		t.Errorf("ParseEcho = %d %#x %#x %v", typ, id, seq, err)
	}
	if _, _, _, err := ParseEcho(b[:7]); err == nil {
		t.Error("ParseEcho of 7 bytes: no error")
	}
}

func TestChecksumKnownValue(t *testing.T) {
	// RFC 1071 section 3 example: the ones' complement sum is 0xddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b); got != ^uint16(0xddf2) {
		t.Errorf("Checksum = %#x, want %#x", got, ^uint16(0xddf2))
	}
}

// ipv4 is a 20-byte IPv4 header for ICMP from 198.18.0.1 to 198.18.0.2
// with the given fragment field, followed by msg.
func ipv4(frag uint16, msg []byte) []byte {
	b := []byte{0x45, 0, 0, 0, 0, 0, byte(frag >> 8), byte(frag), 64, ProtocolICMP, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2}
	total := len(b) + len(msg)
	b[2], b[3] = byte(total>>8), byte(total)
	return append(b, msg...)
}

func TestParseIPv4(t *testing.T) {
	echo := AppendEcho(nil, 7, 9, []byte("x"))
	p, err := ParseIPv4(ipv4(0x4000, echo)) // DF, offset 0
	if err != nil || p.Src != netip.MustParseAddr("198.18.0.1") || p.Dst != netip.MustParseAddr("198.18.0.2") ||
		p.TotalLen != uint16(20+len(echo)) || string(p.ICMP) != string(echo) {
		t.Errorf("ParseIPv4 = %+v, %v", p, err)
	}
	// A later fragment (MF, offset 8 × 8 bytes) has no ICMP header.
	if p, err := ParseIPv4(ipv4(0x2008, echo)); err != nil || p.ICMP != nil || p.TotalLen != uint16(20+len(echo)) {
		t.Errorf("later fragment: %+v, %v; want the IP fields and no ICMP", p, err)
	}
	if p, err := ParseIPv4(ipv4(0, echo[:7])); err != nil || p.ICMP != nil {
		t.Errorf("7 bytes of ICMP: %+v, %v; want no ICMP", p, err)
	}
	tcp := ipv4(0, echo)
	tcp[9] = 6
	long := ipv4(0, echo)
	long[0] = 0x4f // 60-byte header in a 29-byte packet
	for name, b := range map[string][]byte{"short": ipv4(0, nil)[:19], "IPv6": append([]byte{0x60}, make([]byte, 39)...), "TCP": tcp, "header length": long} {
		if _, err := ParseIPv4(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
