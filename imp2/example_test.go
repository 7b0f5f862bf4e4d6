package imp2_test

import (
	"fmt"
	"net/netip"

	"github.com/imp2/imp2/imp2"
)

// A received datagram holds one netlink message: check the header, then
// decode the payload it delimits.
func ExampleParseEvent() {
	// What the module sends: here built with AppendEventMessage.
	frame := imp2.AppendEventMessage(nil, 7, imp2.Event{
		Src:      netip.MustParseAddr("10.0.0.1"),
		Dest:     netip.MustParseAddr("10.0.0.2"),
		Extended: true,
		ICMPType: 8,
		ICMPID:   0x1c2a,
		ICMPSeq:  3,
		Flags:    imp2.EventFlagICMP,
	})

	h, err := imp2.ParseHeader(frame)
	if err != nil || h.Type != imp2.TypeEvent {
		fmt.Println("not an event:", err)
		return
	}
	e, err := imp2.ParseEvent(frame[imp2.HeaderLen:h.Len])
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("seq %d src: %v, dest: %v\n", h.Seq, e.Src, e.Dest)
	if e.Extended && e.Flags&imp2.EventFlagICMP != 0 {
		fmt.Printf("icmp type %d id %#x seq %d\n", e.ICMPType, e.ICMPID, e.ICMPSeq)
	}
	// Output:
	// seq 7 src: 10.0.0.1, dest: 10.0.0.2
	// icmp type 8 id 0x1c2a seq 3
}

// The original module sends only struct packet_info: 8 bytes of addresses
// in network byte order. ParseEvent reads them as a legacy event.
func ExampleParseEvent_legacy() {
	e, err := imp2.ParseEvent([]byte{192, 168, 1, 10, 192, 168, 1, 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("src: %v, dest: %v, extended: %v\n", e.Src, e.Dest, e.Extended)
	// Output: src: 192.168.1.10, dest: 192.168.1.1, extended: false
}
