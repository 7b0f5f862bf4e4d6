package pcapnl

import (
	"math/rand/v2"
	"net/netip"

	"github.com/imp2/imp2/imp2"
)

// floodTrace builds a realistic imp2 conversation: the consumer registers
// (IMP2_U_PID, user→kernel), then n extended IMP2_K_MSG events of an ICMP
// echo flood between a few address pairs with monotonic, slightly jittered
// timestamps and an occasional drop (a gap in nlmsg_seq and a DropCount),
// then IMP2_CLOSE. The same seed gives the same frames.
func floodTrace(n int, seed uint64) []Frame {
	rng := rand.New(rand.NewPCG(seed, 42))
	pairs := [][2]netip.Addr{
		{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.1.1")},
		{netip.MustParseAddr("192.168.1.11"), netip.MustParseAddr("192.168.1.1")},
		{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.1")},
		{netip.MustParseAddr("172.16.4.2"), netip.MustParseAddr("192.168.1.1")},
	}
	const pid = 4242
	t := int64(1_700_000_000_123_456_789)
	mono := uint64(12_345_678_901_234)
	frames := make([]Frame, 0, n+2)
	frames = append(frames, Frame{Time: t, Direction: ToKernel, Family: imp2.DefaultFamily,
		Data: imp2.AppendControl(nil, imp2.TypeRegister, 0, 0, pid)})
	seq := uint32(0)
	icmpSeq := make([]uint16, len(pairs))
	for i := range n {
		gap := int64(8_000 + rng.IntN(4_000)) // ~100k events/s
		t += gap
		mono += uint64(gap) - 300 + uint64(rng.IntN(600))
		seq++
		var drops uint64
		if rng.IntN(500) == 0 {
			d := uint32(1 + rng.IntN(20))
			seq += d
			drops = uint64(d)
		}
		p := i % len(pairs)
		if rng.IntN(8) == 0 {
			p = rng.IntN(len(pairs))
		}
		icmpSeq[p]++
		e := imp2.Event{
			Src: pairs[p][0], Dest: pairs[p][1], Extended: true,
			TimeNs: mono, IfIndex: int32(2 + p%2),
			ICMPType: 8, ICMPID: uint16(0x1234 + p), ICMPSeq: icmpSeq[p],
			Flags: imp2.EventFlagICMP, IPLen: 84,
		}
		frames = append(frames, Frame{Time: t, Direction: ToUser, Family: imp2.DefaultFamily,
			DropCount: drops, Data: imp2.AppendEventMessage(nil, seq, e)})
	}
	t += 1_000_000
	frames = append(frames, Frame{Time: t, Direction: ToKernel, Family: imp2.DefaultFamily,
		Data: imp2.AppendControl(nil, imp2.TypeClose, 0, 0, pid)})
	return frames
}
