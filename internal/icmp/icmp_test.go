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

func TestSenderRejectsIPv6(t *testing.T) {
	if _, err := NewSender(netip.MustParseAddr("::1")); err == nil {
		t.Error("NewSender(::1): no error")
	}
}
