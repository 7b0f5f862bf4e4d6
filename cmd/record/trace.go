package main

import (
	"sync/atomic"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// batch is what one read returned, as the trace writer needs it.
type batch struct {
	msgs []imp2.Message
	keep int   // msgs[:keep] are written; the rest only accounted
	t    int64 // receive time of the batch, ns since the epoch
	dir  pcapnl.Direction
	late bool // read after the end (while fetching the final statistics)
	// SO_MEMINFO drops the receive loop saw grow at ENOBUFS notifications
	// just before this batch.
	memDrops uint64
}

// traceWriter writes what the recorder reads and sends into the trace, in
// order, and keeps the accounting. It runs on the receive goroutine:
// encoding a frame costs less there than handing it to another goroutine
// did (measured against the C sink, see bench_test.go), and the
// compression and the output run on the goroutine of the pcapnl.Writer's
// queue, the -buffer bytes between the two.
type traceWriter struct {
	w      *pcapnl.Writer
	family uint16
	peer   uint32
	err    error // first write error; later frames are discarded
	frame  pcapnl.Frame

	// Read by the progress line.
	written      atomic.Uint64 // frames written
	seqGapsShown atomic.Uint64

	acct accounting
}

// accounting is what the writer learns from the frames, in order.
type accounting struct {
	toUser, toKernel uint64 // frames written per direction
	events           uint64 // IMP2_K_MSG messages from the peer (written or not)
	dataBytes        uint64 // netlink bytes written
	notRecorded      uint64 // frames read after -count was reached
	lateFrames       uint64 // frames read while fetching the final statistics
	truncated        uint64 // datagrams longer than -snaplen
	dropCounts       uint64 // sum of the pcapng drop counts written

	fromOne     bool // the peer numbers our events from 1 (the module)
	haveSeq     bool
	firstSeq    uint32
	lastSeq     uint32
	seqGaps     uint64
	seqBackward uint64 // sequence numbers that went back (producer restarted)
	unnumbered  uint64 // events with nlmsg_seq 0
}

func newTraceWriter(w *pcapnl.Writer, cfg *config) *traceWriter {
	tw := &traceWriter{w: w, family: uint16(cfg.family), peer: cfg.peer}
	tw.acct.fromOne = cfg.peer == 0
	return tw
}

// write writes and accounts one batch; it returns the first write error,
// after which frames are only accounted.
func (tw *traceWriter) write(b batch) error {
	a := &tw.acct
	f := &tw.frame
	f.Time, f.Direction, f.Family = b.t, b.dir, tw.family
	pendingMem := b.memDrops
	for i := range b.msgs {
		m := &b.msgs[i]
		if m.Truncated {
			a.truncated++
		}
		var gap uint64
		numbered := false
		if b.dir == pcapnl.ToUser && m.PortID == tw.peer {
			gap, numbered = a.sequence(m.Data())
		}
		if i >= b.keep {
			a.notRecorded++
			continue
		}
		if b.late {
			a.lateFrames++
		}
		if !numbered && pendingMem > 0 {
			// An unnumbered stream: the drops SO_MEMINFO counted at the
			// overrun go on the next frame. Numbered streams place their
			// drops exactly, by their gaps.
			gap, pendingMem = pendingMem, 0
		}
		if tw.err != nil {
			continue
		}
		f.DropCount, f.Data = gap, m.Data()
		if err := tw.w.WriteFrame(f); err != nil {
			tw.err = err
			continue
		}
		a.dropCounts += gap
		a.dataBytes += uint64(m.N)
		if b.dir == pcapnl.ToUser {
			a.toUser++
		} else {
			a.toKernel++
		}
	}
	f.Data = nil
	tw.written.Store(a.toUser + a.toKernel)
	tw.seqGapsShown.Store(a.seqGaps)
	return tw.err
}

// sequence walks the netlink messages of one datagram from the peer and
// returns the number of events missing before it, by nlmsg_seq, and
// whether it held a numbered event. The module numbers each consumer's
// events from 1; other producers may start anywhere, so for them the first
// event sets the base.
func (a *accounting) sequence(b []byte) (gap uint64, numbered bool) {
	for len(b) >= imp2.HeaderLen {
		h, err := imp2.ParseHeader(b)
		if err != nil {
			break
		}
		if h.Type == imp2.TypeEvent {
			a.events++
			gap += a.next(h.Seq)
			numbered = numbered || h.Seq != 0
		}
		adv := (int(h.Len) + 3) &^ 3
		if adv >= len(b) {
			break
		}
		b = b[adv:]
	}
	return gap, numbered
}

func (a *accounting) next(seq uint32) uint64 {
	if seq == 0 {
		a.unnumbered++
		return 0
	}
	if !a.haveSeq {
		a.haveSeq, a.firstSeq, a.lastSeq = true, seq, seq
		if a.fromOne && seq > 1 {
			a.seqGaps += uint64(seq - 1)
			return uint64(seq - 1)
		}
		return 0
	}
	d := int32(seq - a.lastSeq)
	a.lastSeq = seq
	switch {
	case d > 1:
		a.seqGaps += uint64(d - 1)
		return uint64(d - 1)
	case d <= 0:
		a.seqBackward++
	}
	return 0
}
