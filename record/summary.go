package record

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/imp2/imp2/imp2"
)

// Summary is what a recording reports at the end. Counts are frames unless
// named bytes.
type Summary struct {
	Type        string  `json:"type"`   // "summary", as imp2-replay's JSON lines say what they are
	Output      string  `json:"output"` // Options.Path
	Family      int     `json:"family"`
	Peer        uint32  `json:"peer"`
	Port        uint32  `json:"port"`
	RcvBuf      int     `json:"rcvbuf"` // granted by the kernel (doubled)
	Stop        string  `json:"stop"`   // why it stopped: a Stop* reason or the one given to Stop
	Seconds     float64 `json:"seconds"`
	Received    uint64  `json:"received"`                        // datagrams read before the end
	Rate        float64 `json:"rate"`                            // received per second
	Batches     uint64  `json:"batches"`                         // recvmmsg calls that returned frames
	Waits       uint64  `json:"waits"`                           // between reads (Options.Coalesce)
	WaitNoRoom  bool    `json:"wait_rcvbuf_too_small,omitempty"` // Coalesce set, but the receive buffer too small for any wait
	Frames      uint64  `json:"frames"`                          // in the trace: accepted by the output, both directions
	WriteLost   uint64  `json:"write_lost"`                      // read or sent, but cut off by a write error (never in the trace)
	ToUser      uint64  `json:"frames_to_user"`                  // given to the trace writer, received (= in the trace when write_lost is 0)
	ToKernel    uint64  `json:"frames_to_kernel"`
	Events      uint64  `json:"events"` // IMP2_K_MSG from the peer, written or not
	DataBytes   uint64  `json:"netlink_bytes"`
	FileBytes   uint64  `json:"file_bytes"`
	Late        uint64  `json:"late"`         // read while fetching the final statistics, written
	NotRecorded uint64  `json:"not_recorded"` // read after Options.Count was reached
	Truncated   uint64  `json:"truncated"`    // longer than Options.SnapLen
	Filtered    uint64  `json:"filtered"`     // left out by Options.Filter (never losses)
	FirstSeq    uint32  `json:"first_seq,omitempty"`
	LastSeq     uint32  `json:"last_seq,omitempty"`
	SeqBackward uint64  `json:"seq_backward,omitempty"` // numbers that did not move forward: the producer restarted
	Unnumbered  uint64  `json:"unnumbered,omitempty"`

	// ReceiveCPU is the CPU time, user and system, of the receive loop's
	// thread (Linux; 0 elsewhere): what to compare with a C consumer's.
	ReceiveCPU float64 `json:"receive_cpu_seconds"`

	Drops     Drops      `json:"drops"`
	PeerStats *PeerStats `json:"peer_stats,omitempty"`
	PeerError string     `json:"peer_stats_error,omitempty"` // why PeerStats is missing
	Writer    Writer     `json:"writer"`
	// Files are the trace's files on disk in the order they were
	// written: one, or a rotated set; Removed sums those the ring
	// removed.
	Files   []File   `json:"files"`
	Removed *Removed `json:"removed_files,omitempty"`

	Error string `json:"error,omitempty"` // a MidwayError's
	// ExitCode is left for the command to fill in (imp2-record's exit
	// status for this outcome); Run leaves it 0.
	ExitCode int `json:"exit_code"`
}

// Drops are the three loss accountings and what the gaps are.
type Drops struct {
	ENOBUFS     uint64 `json:"enobufs"`      // notifications, not frames
	SeqGaps     uint64 `json:"seq_gaps"`     // missing nlmsg_seq numbers, trailing ones included
	SeqTrailing uint64 `json:"seq_trailing"` // of which after the last event read
	MemInfo     uint64 `json:"meminfo"`      // SO_MEMINFO drops
	// Lost is what this recording lost (the isb_ifdrop of the trace): the
	// largest of the peer's self_dropped, the local evidence (SO_MEMINFO,
	// ENOBUFS) and, from the module, the gaps.
	Lost uint64 `json:"lost"`
	// Inherited: gaps already in the numbering the peer sent (a replay of
	// a lossy recording), seq_gaps - lost; needs the peer's counters.
	Inherited uint64 `json:"inherited"`
	// Unexplained: gaps beyond the local evidence when the peer's counters
	// are missing; not in Lost (nothing places them in the trace), but a
	// LossError like losses, so exit_code 3.
	Unexplained uint64 `json:"unexplained"`
	InTrace     uint64 `json:"in_trace"` // sum of the pcapng drop counts written, losses of this recording placed on the frame after them (a classic pcap file cannot hold them)
}

// Writer says how the trace writer's queue fared.
type Writer struct {
	BufferBytes    int     `json:"buffer_bytes"`     // capacity of the queue to the compressing goroutine (Options.Buffer)
	MaxQueuedBytes int     `json:"max_queued_bytes"` // of encoded pcapng
	Stalls         uint64  `json:"stalls"`           // receive loop waited for the writer
	StallSeconds   float64 `json:"stall_seconds"`
	FellBehind     bool    `json:"fell_behind"`
}

// PeerStats are the peer's IMP2_STATS counters at the end. Events to
// Other are per network namespace (all consumers, since the module was
// loaded); the Self fields are this recorder's registration.
type PeerStats struct {
	Events         uint64 `json:"events"`
	UnicastOK      uint64 `json:"unicast_ok"`
	EAGAIN         uint64 `json:"eagain"`
	ECONNREFUSED   uint64 `json:"econnrefused"`
	ENOMEM         uint64 `json:"enomem"`
	Other          uint64 `json:"other_err"`
	Consumers      uint32 `json:"consumers"`
	SelfRegistered bool   `json:"self_registered"`
	SelfSent       uint64 `json:"self_sent"`
	SelfDropped    uint64 `json:"self_dropped"`
	SelfLastSeq    uint32 `json:"self_last_seq"`
}

func newPeerStats(s *imp2.Stats) *PeerStats {
	if s == nil {
		return nil
	}
	return &PeerStats{
		Events: s.Events, UnicastOK: s.UnicastOK, EAGAIN: s.EAGAIN, ECONNREFUSED: s.ECONNREFUSED,
		ENOMEM: s.ENOMEM, Other: s.OtherErr, Consumers: s.Consumers, SelfRegistered: s.SelfRegistered,
		SelfSent: s.SelfSent, SelfDropped: s.SelfDropped, SelfLastSeq: s.SelfLastSeq,
	}
}

// WriteJSON writes the summary as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteText writes the summary for a person: a first line naming the
// output, why and when it stopped (for the caller to prefix with its
// name), then one indented line per topic.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("%s after %.3f s (%s)\n", s.Output, s.Seconds, s.Stop)
	waits := fmt.Sprintf(", %d waits", s.Waits)
	if s.WaitNoRoom {
		waits = ": too small to wait between reads"
	}
	p("  received  %d frames from family %d peer %d on port %d, %.0f/s, %.1f per recvmmsg (rcvbuf %d%s)\n",
		s.Received, s.Family, s.Peer, s.Port, s.Rate, float64(s.Received)/float64(max(s.Batches, 1)), s.RcvBuf, waits)
	if s.WriteLost > 0 {
		p("  written   %d frames, %d bytes on disk; %d frames read or sent never reached the trace (write error)\n",
			s.Frames, s.FileBytes, s.WriteLost)
	} else {
		p("  written   %d frames (%d received, %d sent by the recorder), %d netlink bytes, %d bytes on disk\n",
			s.Frames, s.ToUser, s.ToKernel, s.DataBytes, s.FileBytes)
	}
	if s.Late > 0 || s.NotRecorded > 0 {
		p("  end       %d frames read while fetching the final statistics were written, %d past the count were not\n", s.Late, s.NotRecorded)
	}
	if s.Truncated > 0 {
		p("  truncated %d frames longer than the snap length\n", s.Truncated)
	}
	if s.Filtered > 0 {
		p("  filtered  %d frames left out by the capture filter (not losses)\n", s.Filtered)
	}
	s.filesText(p)
	p("  drops     seq gaps %d%s  enobufs %d (notifications)  meminfo %d  => %s\n",
		s.Drops.SeqGaps, s.gapsText(), s.Drops.ENOBUFS, s.Drops.MemInfo, s.verdictText())
	if ps := s.PeerStats; ps != nil {
		p("  peer      self: registered %v, sent %d, dropped %d, last seq %d; namespace: events %d, unicast ok %d, eagain %d, econnrefused %d, enomem %d, consumers %d\n",
			ps.SelfRegistered, ps.SelfSent, ps.SelfDropped, ps.SelfLastSeq, ps.Events, ps.UnicastOK, ps.EAGAIN, ps.ECONNREFUSED, ps.ENOMEM, ps.Consumers)
	} else if s.PeerError != "" {
		p("  peer      no counters: %s\n", s.PeerError)
	}
	if wr := s.Writer; wr.FellBehind {
		p("  writer    FELL BEHIND: the receive loop waited for it %d times (%.3f s); the kernel queue took the backlog, and what overflowed it is in the drops above\n",
			wr.Stalls, wr.StallSeconds)
	} else {
		p("  writer    kept up (at most %d of %d KiB of encoded frames queued for compression)\n", wr.MaxQueuedBytes>>10, wr.BufferBytes>>10)
	}
	if s.Error != "" {
		p("  error     %s\n", s.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// filesText lists a rotated set's files on disk, the last maxFilesShown
// of them, and what the ring removed.
func (s *Summary) filesText(p func(string, ...any)) {
	if len(s.Files) < 2 && s.Removed == nil {
		return
	}
	if g := s.Removed; g != nil {
		p("  files     %d on disk; %d removed by the ring (%d frames, %d bytes)\n", len(s.Files), g.Files, g.Frames, g.Bytes)
	} else {
		p("  files     %d on disk\n", len(s.Files)) // no ring (-W)
	}
	files := s.Files
	if len(files) > maxFilesShown {
		p("            ... %d more\n", len(files)-maxFilesShown)
		files = files[len(files)-maxFilesShown:]
	}
	for _, f := range files {
		p("            %s  %d frames, %d bytes\n", f.Path, f.Frames, f.Bytes)
	}
}

// maxFilesShown bounds the files the text summary lists (the JSON has all).
const maxFilesShown = 16

// gapsText says, in parentheses, what the sequence gaps are: losses of
// this recording, gaps inherited from the source, or, without the peer's
// counters, unexplained; and, where the peer's last seq is known, how
// many came after the last event read.
func (s *Summary) gapsText() string {
	d := s.Drops
	var parts []string
	switch {
	case s.Peer != 0 && s.PeerStats != nil && s.PeerStats.SelfRegistered:
		parts = append(parts, fmt.Sprintf("%d inherited from the source: the peer dropped %d", d.Inherited, s.PeerStats.SelfDropped))
	case d.Unexplained > 0:
		parts = append(parts, fmt.Sprintf("%d unexplained: no counters from the peer", d.Unexplained))
	}
	if s.PeerStats != nil {
		parts = append(parts, fmt.Sprintf("%d of them after the last event read", d.SeqTrailing))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// verdictText ends the drops line as the exit status judges: the losses
// of this recording and the unexplained gaps, which fail the run as
// losses do, and the exit status they make once the command filled it in.
func (s *Summary) verdictText() string {
	v := fmt.Sprintf("lost %d", s.Drops.Lost)
	if s.Drops.Unexplained > 0 {
		v += fmt.Sprintf(", unexplained %d, counted as lost", s.Drops.Unexplained)
	}
	if s.ExitCode == ExitLost {
		v += fmt.Sprintf(" (exit %d)", s.ExitCode)
	}
	return v
}

// summarize computes the summary from what the recording saw, after the
// conversation ended; the writer and output figures come later (finish).
func (r *Recorder) summarize() *Summary {
	a := &r.tw.acct
	s := &Summary{
		Type: "summary", Output: r.opts.Path, Family: r.opts.Family, Peer: r.opts.Peer, Port: r.port, RcvBuf: r.rcvbuf,
		Stop: r.stopReason(), Seconds: r.end.Sub(r.start).Seconds(), Received: r.received.Load(),
		Batches: r.batches, Waits: r.waits, WaitNoRoom: r.waitNoRoom, ReceiveCPU: r.recvCPU.Seconds(),
		Frames: a.toUser + a.toKernel, ToUser: a.toUser, ToKernel: a.toKernel, Events: a.events,
		DataBytes: a.dataBytes, Late: a.lateFrames, NotRecorded: a.notRecorded, Truncated: a.truncated,
		Filtered:    a.filtered,
		SeqBackward: a.seq.Restarts(), Unnumbered: a.seq.Unnumbered(),
	}
	if s.Seconds > 0 {
		s.Rate = float64(s.Received) / s.Seconds
	}
	if first, last, ok := a.seq.Span(); ok {
		s.FirstSeq, s.LastSeq = first, last
	}
	ps := r.peerStats
	peerKnown := ps != nil && ps.SelfRegistered
	d := &s.Drops
	d.ENOBUFS = r.overruns.Load()
	if peerKnown {
		d.SeqTrailing = a.seq.ObserveLast(ps.SelfLastSeq)
	}
	d.SeqGaps = a.seq.Missing()
	d.InTrace = a.dropCounts
	if r.memErr == nil {
		d.MemInfo = uint64(r.memInfo.Drops)
	}
	r.explainGaps(d, peerKnown)
	s.PeerStats = newPeerStats(ps)
	switch {
	case r.opts.StatsTimeout == 0:
		s.PeerError = "not asked (no statistics timeout)"
	case r.statsErr != nil:
		s.PeerError = r.statsErr.Error()
	}
	return s
}

// explainGaps divides the sequence gaps into losses of this recording and
// inherited or unexplained ones.
func (r *Recorder) explainGaps(d *Drops, peerKnown bool) {
	// What this socket saw itself; an ENOBUFS means at least one drop.
	local := max(d.MemInfo, d.InTrace)
	if d.ENOBUFS > 0 {
		local = max(local, 1)
	}
	switch {
	case r.tw.acct.source():
		// The module numbers our events: every gap is ours.
		d.Lost = max(d.SeqGaps, local)
		if peerKnown {
			d.Lost = max(d.Lost, r.peerStats.SelfDropped)
		}
	case peerKnown:
		// The peer's drops to us (EAGAIN at a user-space sender, which
		// this socket never sees) are ours; the rest of the gaps were in
		// the numbering before the peer sent it.
		d.Lost = max(r.peerStats.SelfDropped, local)
		d.Inherited = d.SeqGaps - min(d.Lost, d.SeqGaps)
	default:
		// No counters from the peer: gaps beyond the local evidence may
		// be the peer's drops to us or upstream ones; they are reported
		// as unexplained and, to be safe, fail the run like losses.
		d.Lost = local
		d.Unexplained = d.SeqGaps - min(d.Lost, d.SeqGaps)
	}
}

// setWritten counts as written only the frames that reached the output
// (all of them unless a write error cut it); the rest the recorder read or
// sent were lost to the write error.
func (s *Summary) setWritten(out uint64, a *accounting) {
	given := a.toUser + a.toKernel
	s.Frames = min(out, given)
	s.WriteLost = given - s.Frames + a.discarded
}
