package imp2

import (
	"net/netip"
	"testing"
)

func TestMessages(t *testing.T) {
	var b []byte
	b = AppendEventMessage(b, 1, Event{Src: netip.MustParseAddr("192.0.2.1"), Dest: netip.MustParseAddr("192.0.2.2")})
	b = AppendControl(b, TypeClose, 0, 7, 0)
	var types []uint16
	for m, err := range Messages(b) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, m.Header.Type)
	}
	if len(types) != 2 || types[0] != TypeEvent || types[1] != TypeClose {
		t.Errorf("types %v, want [%d %d]", types, TypeEvent, TypeClose)
	}

	bad := append(AppendControl(nil, TypeClose, 0, 1, 0), 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	n, errs := 0, 0
	for _, err := range Messages(bad) {
		if err != nil {
			errs++
		} else {
			n++
		}
	}
	if n != 1 || errs != 1 {
		t.Errorf("a good message then one whose nlmsg_len runs past the datagram: %d messages, %d errors; want 1 and 1", n, errs)
	}
}
