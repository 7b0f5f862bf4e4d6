package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/imp2"
)

// summary is what the recorder reports at the end, on stderr as text and
// with -json as JSON. Counts are frames unless named bytes.
type summary struct {
	Output      string  `json:"output"`
	Family      int     `json:"family"`
	Peer        uint32  `json:"peer"`
	Port        uint32  `json:"port"`
	RcvBuf      int     `json:"rcvbuf"` // granted by the kernel (doubled)
	Stop        string  `json:"stop"`
	Seconds     float64 `json:"seconds"`
	Received    uint64  `json:"received"`       // datagrams read before the end
	Rate        float64 `json:"rate"`           // received per second
	Batches     uint64  `json:"batches"`        // recvmmsg calls that returned frames
	Frames      uint64  `json:"frames"`         // in the trace: accepted by the output, both directions
	WriteLost   uint64  `json:"write_lost"`     // read or sent, but cut off by a write error (never in the trace)
	ToUser      uint64  `json:"frames_to_user"` // given to the trace writer, received (= in the trace when write_lost is 0)
	ToKernel    uint64  `json:"frames_to_kernel"`
	Events      uint64  `json:"events"` // IMP2_K_MSG from the peer, written or not
	DataBytes   uint64  `json:"netlink_bytes"`
	FileBytes   uint64  `json:"file_bytes"`
	Late        uint64  `json:"late"`         // read while fetching the final statistics, written
	NotRecorded uint64  `json:"not_recorded"` // read after -count was reached
	Truncated   uint64  `json:"truncated"`    // longer than -snaplen
	FirstSeq    uint32  `json:"first_seq,omitempty"`
	LastSeq     uint32  `json:"last_seq,omitempty"`
	SeqBackward uint64  `json:"seq_backward,omitempty"`
	Unnumbered  uint64  `json:"unnumbered,omitempty"`

	Drops struct {
		ENOBUFS     uint64 `json:"enobufs"`      // notifications, not frames
		SeqGaps     uint64 `json:"seq_gaps"`     // missing nlmsg_seq numbers, trailing ones included
		SeqTrailing uint64 `json:"seq_trailing"` // of which after the last event read
		MemInfo     uint64 `json:"meminfo"`      // SO_MEMINFO drops
		// Lost is what this recording lost (the isb_ifdrop of the trace):
		// the largest of the peer's self_dropped, the local evidence
		// (SO_MEMINFO, ENOBUFS) and, from the module, the gaps.
		Lost uint64 `json:"lost"`
		// Inherited: gaps already in the numbering the peer sent (a replay
		// of a lossy recording), seq_gaps - lost; needs the peer's counters.
		Inherited uint64 `json:"inherited"`
		// Unexplained: gaps beyond the local evidence when the peer's
		// counters are missing; counted as losses for the exit status.
		Unexplained uint64 `json:"unexplained"`
		InTrace     uint64 `json:"in_trace"` // sum of the pcapng drop counts written, losses of this recording placed on the frame after them
	} `json:"drops"`
	PeerStats *peerStats `json:"peer_stats,omitempty"`
	PeerError string     `json:"peer_stats_error,omitempty"`

	Writer struct {
		BufferBytes    int     `json:"buffer_bytes"`     // capacity of the queue to the compressing goroutine (-buffer)
		MaxQueuedBytes int     `json:"max_queued_bytes"` // of encoded pcapng
		Stalls         uint64  `json:"stalls"`           // receive loop waited for the writer
		StallSeconds   float64 `json:"stall_seconds"`
		FellBehind     bool    `json:"fell_behind"`
	} `json:"writer"`

	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exit_code"`
}

// peerStats are the peer's IMP2_STATS counters at the end. Events to
// Other are per network namespace (all consumers, since the module was
// loaded); the Self fields are this recorder's registration.
type peerStats struct {
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

func newPeerStats(s *imp2.Stats) *peerStats {
	if s == nil {
		return nil
	}
	return &peerStats{
		Events: s.Events, UnicastOK: s.UnicastOK, EAGAIN: s.EAGAIN, ECONNREFUSED: s.ECONNREFUSED,
		ENOMEM: s.ENOMEM, Other: s.OtherErr, Consumers: s.Consumers, SelfRegistered: s.SelfRegistered,
		SelfSent: s.SelfSent, SelfDropped: s.SelfDropped, SelfLastSeq: s.SelfLastSeq,
	}
}

func (s *summary) writeJSON(w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s)
}

func (s *summary) writeText(w io.Writer) {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("imp2-record: %s after %.3f s (%s)\n", s.Output, s.Seconds, s.Stop)
	p("  received  %d frames from family %d peer %d on port %d, %.0f/s, %.1f per recvmmsg (rcvbuf %d)\n",
		s.Received, s.Family, s.Peer, s.Port, s.Rate, float64(s.Received)/float64(max(s.Batches, 1)), s.RcvBuf)
	if s.WriteLost > 0 {
		p("  written   %d frames, %d bytes on disk; %d frames read or sent never reached the trace (write error)\n",
			s.Frames, s.FileBytes, s.WriteLost)
	} else {
		p("  written   %d frames (%d to user, %d to kernel), %d netlink bytes, %d bytes on disk\n",
			s.Frames, s.ToUser, s.ToKernel, s.DataBytes, s.FileBytes)
	}
	if s.Late > 0 || s.NotRecorded > 0 {
		p("  end       %d frames read while fetching the final statistics were written, %d past -count were not\n", s.Late, s.NotRecorded)
	}
	if s.Truncated > 0 {
		p("  truncated %d frames longer than -snaplen\n", s.Truncated)
	}
	p("  drops     seq gaps %d (%s)  enobufs %d (notifications)  meminfo %d  => lost %d\n",
		s.Drops.SeqGaps, s.gapsText(), s.Drops.ENOBUFS, s.Drops.MemInfo, s.Drops.Lost)
	if ps := s.PeerStats; ps != nil {
		p("  peer      self: registered %v, sent %d, dropped %d, last seq %d; namespace: events %d, unicast ok %d, eagain %d, econnrefused %d, enomem %d, consumers %d\n",
			ps.SelfRegistered, ps.SelfSent, ps.SelfDropped, ps.SelfLastSeq, ps.Events, ps.UnicastOK, ps.EAGAIN, ps.ECONNREFUSED, ps.ENOMEM, ps.Consumers)
	} else if s.PeerError != "" {
		p("  peer      no counters: %s\n", s.PeerError)
	}
	wr := s.Writer
	if wr.FellBehind {
		p("  writer    FELL BEHIND: the receive loop waited for it %d times (%.3f s); the kernel queue took the backlog, and what overflowed it is in the drops above\n",
			wr.Stalls, wr.StallSeconds)
	} else {
		p("  writer    kept up (at most %d of %d KiB of encoded frames queued for compression)\n", wr.MaxQueuedBytes>>10, wr.BufferBytes>>10)
	}
	if s.Error != "" {
		p("  error     %s\n", s.Error)
	}
	io.WriteString(w, b.String())
}

// gapsText says what the sequence gaps are: losses of this recording,
// gaps inherited from the source, or, without the peer's counters,
// unexplained.
func (s *summary) gapsText() string {
	d := s.Drops
	var parts []string
	switch {
	case s.Peer != 0 && s.PeerStats != nil && s.PeerStats.SelfRegistered:
		parts = append(parts, fmt.Sprintf("%d inherited from the source: the peer dropped %d", d.Inherited, s.PeerStats.SelfDropped))
	case d.Unexplained > 0:
		parts = append(parts, fmt.Sprintf("%d unexplained: no counters from the peer; counted as lost for the exit status", d.Unexplained))
	}
	parts = append(parts, fmt.Sprintf("%d after the last event", d.SeqTrailing))
	return strings.Join(parts, "; ")
}

// progress prints a status line on a terminal once a second until stop is
// closed, then clears it.
type progress struct {
	w    io.Writer
	r    *recorder
	out  *countingWriter
	stop chan struct{}
	done chan struct{}
}

func startProgress(w io.Writer, r *recorder, out *countingWriter) *progress {
	p := &progress{w: w, r: r, out: out, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *progress) run() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start, last, lastT := time.Now(), uint64(0), time.Now()
	for {
		select {
		case <-p.stop:
			fmt.Fprint(p.w, "\r\033[K")
			return
		case now := <-t.C:
			got := p.r.received.Load()
			rate := float64(got-last) / now.Sub(lastT).Seconds()
			last, lastT = got, now
			var mem uint32
			if mi, err := p.r.conn.MemInfo(); err == nil {
				mem = mi.Drops
			}
			fmt.Fprintf(p.w, "\r\033[K%s  %d frames  %.0f/s  %s written  drops: enobufs %d, seq gaps %d, meminfo %d",
				now.Sub(start).Truncate(time.Second), got, rate, mib(p.out.n.Load()),
				p.r.overruns.Load(), p.r.tw.seqGapsShown.Load(), mem)
		}
	}
}

func (p *progress) end() {
	close(p.stop)
	<-p.done
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// countingWriter counts the bytes that reach the output.
type countingWriter struct {
	w io.Writer
	n atomic.Uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}
