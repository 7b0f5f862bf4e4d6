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
