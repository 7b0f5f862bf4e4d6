package bench

import (
	"testing"

	"github.com/imp2/imp2/imp2"
)

// The emulation reports what the module reports: a later fragment of an
// ICMP datagram is an event without ICMP fields (the module reads them only
// at fragment offset 0).
func TestEmuEventFragment(t *testing.T) {
	first := []byte{0x45, 0, 0, 28, 0, 0, 0x20, 0, 64, 1, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, 8, 0, 0, 0, 0, 7, 0, 9}
	ev, ok := parseICMP(first)
	if !ok || ev.Flags != imp2.EventFlagICMP || ev.ICMPType != 8 || ev.ICMPID != 7 || ev.ICMPSeq != 9 || ev.IPLen != 28 {
		t.Errorf("first fragment: %+v, %v", ev, ok)
	}
	later := append([]byte(nil), first...)
	later[6], later[7] = 0x00, 0x03 // last fragment, offset 24 bytes
	ev, ok = parseICMP(later)
	if !ok || ev.Flags != 0 || ev.ICMPType != 0 || ev.ICMPID != 0 || ev.ICMPSeq != 0 || ev.IPLen != 28 {
		t.Errorf("later fragment: %+v, %v; want an event without ICMP fields", ev, ok)
	}
}
