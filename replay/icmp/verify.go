package icmp

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/replay"
)

// Verification (Options.Verify): the events the module emitted during the
// replay, read by a consumer of our own, compared with the events replayed.

// evKey identifies an event: what the hook took from the packet.
type evKey struct {
	src, dst  [4]byte
	typ, code uint8
	id, seq   uint16
}

func (k evKey) String() string {
	return fmt.Sprintf("%v>%v type %d code %d id %d seq %d",
		netip.AddrFrom4(k.src), netip.AddrFrom4(k.dst), k.typ, k.code, k.id, k.seq)
}

// addrOnly is the key of an event known only by its addresses.
func (k evKey) addrOnly() evKey { return evKey{src: k.src, dst: k.dst} }

// expectedEvent is one event the replay should cause.
type expectedEvent struct {
	key evKey
	// full: the recording had the ICMP fields (an extended event), so they
	// must match too; a legacy event matches on its addresses.
	full bool
	dl   int64 // scheduled send time, ns after the replay clock started
}

// expectedFor returns the expected event of a recorded one.
func expectedFor(e *imp2.Event, p *packetSpec, dl int64) expectedEvent {
	k := evKey{src: p.Src, dst: p.Dst}
	if !e.Extended {
		return expectedEvent{key: k, dl: dl}
	}
	if !p.fragment() {
		k.typ, k.code, k.id, k.seq = p.Type, p.Code, p.ID, p.Seq
	}
	return expectedEvent{key: k, full: true, dl: dl}
}

// observedEvent is one event the verifying consumer received.
type observedEvent struct {
	key evKey
	t   int64 // CLOCK_MONOTONIC ns: the module's unicast time, or our receive time
}

func observedKey(e *imp2.Event) evKey {
	return evKey{src: e.Src.As4(), dst: e.Dest.As4(), typ: e.ICMPType, code: e.ICMPCode, id: e.ICMPID, seq: e.ICMPSeq}
}

// VerifyReport is the verification part of the summary.
type VerifyReport struct {
	Expected  int64 `json:"expected"`  // events replayed (packets sent)
	Received  int64 `json:"received"`  // events read from the module for our interface
	Foreign   int64 `json:"foreign"`   // events of other interfaces, left out of the comparison
	Matched   int64 `json:"matched"`   // received events matched to a replayed one
	Missing   int64 `json:"missing"`   // replayed events never received
	Extra     int64 `json:"extra"`     // received events matching no replayed one
	Reordered int64 `json:"reordered"` // matched events out of the replayed order (not on the longest in-order run)

	// Losses the verifying consumer knows of: nlmsg_seq gaps (and the
	// events after its last one, from the module's self_last_seq), ENOBUFS
	// notifications, and the module's own count (self_dropped).
	SeqGaps       uint64 `json:"seq_gaps"`
	ENOBUFS       uint64 `json:"enobufs"`
	ModuleSent    uint64 `json:"module_sent"`
	ModuleDropped uint64 `json:"module_dropped"`
	// Unexplained: missing events not accounted for by the consumer's
	// losses (missing − seq gaps, floored at 0): packets the hook never saw.
	Unexplained int64  `json:"missing_unexplained"`
	RcvBuf      int    `json:"rcvbuf"`
	StatsError  string `json:"stats_error,omitempty"`

	// EventTiming: event time − scheduled send time of each matched event
	// (the replay's send error plus the veth and hook latency).
	TimeSource  string        `json:"time_source"` // "kernel" (tstamp_ns) or "receive"
	EventTiming *pace.Summary `json:"event_timing_error,omitempty"`

	FirstMissing []string `json:"first_missing,omitempty"`
	FirstExtra   []string `json:"first_extra,omitempty"`
	Tolerance    int64    `json:"tolerance"`
	OK           bool     `json:"ok"` // missing + extra ≤ tolerance
}

const maxExamples = 5

// compare matches the observed stream against the expected one, in order:
// each observed event takes the earliest unmatched expected event with its
// key (all fields for an extended recording, the addresses for a legacy
// one). origin is the replay clock's start on CLOCK_MONOTONIC.
func compare(exp []expectedEvent, obs []observedEvent, origin int64, rep *VerifyReport) {
	rep.Expected, rep.Received = int64(len(exp)), int64(len(obs))
	queues := map[evKey][]int{}
	for i := range exp {
		k := exp[i].key
		if !exp[i].full {
			k = k.addrOnly()
		}
		queues[k] = append(queues[k], i)
	}
	take := func(k evKey) int {
		q := queues[k]
		if len(q) == 0 {
			return -1
		}
		queues[k] = q[1:]
		return q[0]
	}
	matched := make([]bool, len(exp))
	order := make([]int, 0, len(obs)) // expected index of each match, in received order
	errs := pace.NewErrors()
	for _, o := range obs {
		i := take(o.key)
		if i < 0 {
			i = take(o.key.addrOnly())
		}
		if i < 0 {
			rep.Extra++
			if len(rep.FirstExtra) < maxExamples {
				rep.FirstExtra = append(rep.FirstExtra, o.key.String())
			}
			continue
		}
		matched[i] = true
		order = append(order, i)
		errs.Record(o.t-origin, exp[i].dl)
	}
	rep.Matched = int64(len(order))
	rep.Missing = rep.Expected - rep.Matched
	for i := range exp {
		if !matched[i] && len(rep.FirstMissing) < maxExamples {
			rep.FirstMissing = append(rep.FirstMissing, fmt.Sprintf("#%d %v", i, exp[i].key))
		}
	}
	rep.Reordered = rep.Matched - int64(longestIncreasing(order))
	if rep.Matched > 0 {
		s := errs.Summary()
		rep.EventTiming = &s
	}
	rep.Unexplained = max(rep.Missing-int64(rep.SeqGaps), 0)
	rep.OK = rep.Missing+rep.Extra <= rep.Tolerance
}

// longestIncreasing returns the length of the longest strictly increasing
// subsequence of v (patience sorting, O(n log n)).
func longestIncreasing(v []int) int {
	var tails []int
	for _, x := range v {
		i := sort.SearchInts(tails, x)
		if i == len(tails) {
			tails = append(tails, x)
		} else {
			tails[i] = x
		}
	}
	return len(tails)
}

func (r *VerifyReport) text() string {
	var b strings.Builder
	verdict := "OK: the module emitted the replayed events"
	if !r.OK {
		verdict = "DIFFERENT"
	}
	fmt.Fprintf(&b, "  verify: %s\n", verdict)
	fmt.Fprintf(&b, "    replayed %d, received %d (+%d from other interfaces, ignored): matched %d, missing %d, extra %d, reordered %d\n",
		r.Expected, r.Received, r.Foreign, r.Matched, r.Missing, r.Extra, r.Reordered)
	fmt.Fprintf(&b, "    consumer losses (rcvbuf %d): nlmsg_seq gaps %d, ENOBUFS %d, module self_dropped %d of %d; missing not explained by them %d\n",
		r.RcvBuf, r.SeqGaps, r.ENOBUFS, r.ModuleDropped, r.ModuleSent+r.ModuleDropped, r.Unexplained)
	if r.StatsError != "" {
		fmt.Fprintf(&b, "    module counters unavailable: %s\n", r.StatsError)
	}
	if e := r.EventTiming; e != nil {
		fmt.Fprintf(&b, "    event timing error (%s time − scheduled): p50 %s p99 %s max %s\n",
			r.TimeSource, replay.US(e.P50), replay.US(e.P99), replay.US(e.Max))
	}
	for _, m := range r.FirstMissing {
		fmt.Fprintf(&b, "    missing %s\n", m)
	}
	for _, m := range r.FirstExtra {
		fmt.Fprintf(&b, "    extra %s\n", m)
	}
	return b.String()
}

// Summary is the ICMP output's part of the summary (JSON: "icmp").
type Summary struct {
	Mode      string `json:"mode"`      // fresh or existing
	SrcNS     string `json:"src_netns"` // the namespace the packets are sent from
	Dest      string `json:"dest_netns"`
	Interface string `json:"interface"` // where they arrive in the destination
	NFTTable  string `json:"nft_table,omitempty"`
	NoTrack   bool   `json:"notrack,omitempty"`

	Packets         uint64 `json:"packets_sent"`
	NotEvents       uint64 `json:"frames_not_events"` // kernel→user frames that are not IMP2_K_MSG (or of another Options.Family)
	LengthDefaulted uint64 `json:"length_defaulted"`  // extended events whose ip_len could not be sent (< 28 or > 1500)
	Fragments       uint64 `json:"fragments"`         // events without ICMP fields, sent as non-first fragments
	SendErrors      uint64 `json:"send_errors"`
	LastError       string `json:"last_send_error,omitempty"`

	Verify *VerifyReport `json:"verify,omitempty"`
}

func (s *Summary) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  icmp: %d packets from %s into %s on %s (%s)", s.Packets, s.SrcNS, s.Dest, s.Interface, s.Mode)
	if s.NotEvents > 0 {
		fmt.Fprintf(&b, ", %d frames not events", s.NotEvents)
	}
	if s.Fragments > 0 {
		fmt.Fprintf(&b, ", %d as fragments", s.Fragments)
	}
	if s.LengthDefaulted > 0 {
		fmt.Fprintf(&b, ", %d with ip_len replaced by %d", s.LengthDefaulted, defaultPacketLen)
	}
	fmt.Fprintf(&b, ", send errors %d", s.SendErrors)
	if s.LastError != "" {
		fmt.Fprintf(&b, " (last: %s)", s.LastError)
	}
	b.WriteByte('\n')
	if s.Verify != nil {
		b.WriteString(s.Verify.text())
	}
	return b.String()
}
