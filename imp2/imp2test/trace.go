package imp2test

import (
	"io"
	"net/netip"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// TraceStart is the time of the first frame of Events: a fixed instant, so
// that synthetic traces are the same from run to run.
const TraceStart = int64(1_700_000_000_000_000_000)

// Event returns synthetic event n: an ICMP echo request whose addresses,
// identifier, sequence number and time are derived from n, so that a test
// can tell events apart and check each.
func Event(n uint32) imp2.Event {
	return imp2.Event{
		Src:      netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)}),
		Dest:     netip.AddrFrom4([4]byte{198, 19, byte(n >> 8), byte(n)}),
		Extended: true, TimeNs: uint64(n) * 1000, IfIndex: 2, ICMPType: 8,
		ICMPID: 0x4242, ICMPSeq: uint16(n), Flags: imp2.EventFlagICMP, IPLen: 84,
	}
}

// OddEvents returns recorded-looking events that exercise every edge of
// ICMP regeneration, none of them to a local address: documentation
// ranges, loopback, a non-echo type, a legacy (8-byte) payload, ip_len
// values out of range (too short, too long for a veth) and a non-first
// fragment (no ICMP header seen).
func OddEvents() []imp2.Event {
	a := netip.MustParseAddr
	ext := func(src, dst string, typ, code uint8, id, seq, iplen uint16) imp2.Event {
		return imp2.Event{Src: a(src), Dest: a(dst), Extended: true, TimeNs: 1, IfIndex: 7,
			ICMPType: typ, ICMPCode: code, ICMPID: id, ICMPSeq: seq, Flags: imp2.EventFlagICMP, IPLen: iplen}
	}
	evs := []imp2.Event{
		ext("203.0.113.7", "192.0.2.1", 8, 0, 0x1234, 1, 84),
		ext("192.0.2.1", "203.0.113.7", 0, 0, 0x1234, 1, 84),
		ext("198.51.100.9", "192.0.2.200", 3, 1, 0, 0, 56),
		ext("127.0.0.1", "127.1.2.3", 8, 0, 7, 65535, 1400),
		ext("10.1.2.3", "224.0.0.1", 8, 0, 1, 2, 20),   // ip_len too short
		ext("10.1.2.3", "10.9.9.9", 8, 0, 1, 3, 65000), // too long for a veth
		{Src: a("203.0.113.250"), Dest: a("192.0.2.77")},
	}
	frag := ext("192.0.2.5", "203.0.113.5", 0, 0, 0, 0, 1500)
	frag.Flags = 0
	return append(evs, frag)
}

// Events returns the frames of synthetic events first, first+1, … (n of
// them) as the module sends them to a consumer, each numbered (nlmsg_seq)
// as the event, a millisecond apart from TraceStart: the body of a
// synthetic recording. Remove frames to make gaps.
func Events(first uint32, n int) []pcapnl.Frame {
	fs := make([]pcapnl.Frame, n)
	for i := range fs {
		seq := first + uint32(i)
		fs[i] = pcapnl.Frame{
			Time: TraceStart + int64(i)*1e6, Direction: pcapnl.ToUser, Family: imp2.DefaultFamily,
			Data: imp2.AppendEventMessage(nil, seq, Event(seq)),
		}
	}
	return fs
}

// WriteTrace writes frames as a trace, zstd-compressed pcapng as
// imp2-record writes it.
func WriteTrace(w io.Writer, frames []pcapnl.Frame) error {
	pw, err := pcapnl.NewWriter(w, pcapnl.WriterOptions{Application: "imp2test", Family: imp2.DefaultFamily})
	if err != nil {
		return err
	}
	for i := range frames {
		if err := pw.WriteFrame(&frames[i]); err != nil {
			pw.Close()
			return err
		}
	}
	return pw.Close()
}
