package record

import (
	"sync/atomic"

	"github.com/imp2/imp2/filter"
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
	ctrl bool // the recorder's own conversation: no event accounting
}

// traceWriter writes what the recorder reads and sends into the trace, in
// order, and keeps the accounting. It runs on the receive goroutine:
// encoding a frame costs less there than handing it to another goroutine
// did (measured against the C sink, see cmd/record's bench_test.go), and
// the compression and the output run on the goroutine of the
// pcapnl.Writer's queue, the Options.Buffer bytes between the two.
type traceWriter struct {
	files  *traceFiles
	filter *filter.Filter
	family uint16
	peer   uint32
	err    error          // first write error; later frames are discarded
	frames []pcapnl.Frame // the batch being written, kept for its capacity
	// memDrops returns how much the socket's SO_MEMINFO drop count grew
	// since it was last asked (0 when it cannot tell).
	memDrops func() uint64

	// Read by Recorder.Progress.
	written      atomic.Uint64 // frames written
	seqGapsShown atomic.Uint64

	acct accounting
}

// accounting is what the writer learns from the frames, in order.
type accounting struct {
	toUser, toKernel uint64 // frames written per direction
	events           uint64 // IMP2_K_MSG messages from the peer (written or not)
	dataBytes        uint64 // netlink bytes written
	notRecorded      uint64 // frames read after the count was reached
	lateFrames       uint64 // frames read while fetching the final statistics
	truncated        uint64 // datagrams longer than the snap length
	dropCounts       uint64 // sum of the pcapng drop counts written
	discarded        uint64 // frames not given to the trace after a write error
	filtered         uint64 // frames Options.Filter left out
	// heldDrops are the drop counts of frames the filter left out, carried
	// to the next frame written.
	heldDrops uint64

	// credit is local overrun evidence (SO_MEMINFO drops, ENOBUFS) not yet
	// placed on a sequence gap: a gap of a user-space peer's stream is a
	// loss of this recording only as far as this socket saw drops.
	credit uint64

	// seq follows the peer's numbering. From the module (Peer 0), which
	// numbers this consumer's events from 1 itself, it is FromOne and
	// every gap is a loss of this recording (the summary counts them so);
	// other peers (imp2-replay) forward numbers made upstream, gaps
	// included.
	seq imp2.SeqTracker
}

// source reports that the peer is the module, the source of the numbering.
func (a *accounting) source() bool { return a.seq.FromOne }

func newTraceWriter(files *traceFiles, o *Options, memDrops func() uint64) *traceWriter {
	tw := &traceWriter{files: files, filter: o.Filter, family: uint16(o.Family), peer: o.Peer, memDrops: memDrops}
	tw.acct.seq.FromOne = o.Peer == 0
	return tw
}

// overrun adds the drops of an overrun the socket reported (ENOBUFS) to
// the local evidence.
func (tw *traceWriter) overrun(drops uint64) { tw.acct.credit += drops }

// write writes and accounts one batch; it returns the first write error,
// after which frames are only accounted. The batch goes to the trace
// writer whole (pcapnl.Writer.WriteFrames), with one lock and one error
// check per recvmmsg, not per frame.
func (tw *traceWriter) write(b batch) error {
	if tw.err == nil && tw.files.due(b.t) {
		tw.rotate(b.t)
	}
	a := &tw.acct
	fs := tw.frames[:0]
	sampled := false
	for i := range b.msgs {
		m := &b.msgs[i]
		if m.Truncated {
			a.truncated++
		}
		var drops uint64
		if !b.ctrl && b.dir == pcapnl.ToUser && m.PortID == tw.peer {
			drops = a.drops(m.Data(), func() uint64 {
				// Once per batch is enough: every drop that precedes a
				// frame of this batch happened before it was read.
				if sampled {
					return 0
				}
				sampled = true
				return tw.memDrops()
			})
		}
		if i >= b.keep {
			a.notRecorded++
			continue
		}
		if b.late {
			a.lateFrames++
		}
		if tw.err != nil {
			a.discarded++
			continue
		}
		// Filled in place: a Frame built aside and copied in as a whole
		// stalled on its narrow fields (see imp2's headerFields).
		fs = append(fs, pcapnl.Frame{})
		f := &fs[len(fs)-1]
		f.Time, f.Direction, f.Family, f.DropCount, f.Data = b.t, b.dir, tw.family, drops, m.Data()
		if tw.filter != nil && !tw.filter.Match(f) {
			fs = fs[:len(fs)-1]
			a.filtered++
			a.heldDrops += drops
			continue
		}
		if a.heldDrops != 0 {
			f.DropCount += a.heldDrops
			a.heldDrops = 0
		}
	}
	tw.commit(fs, b.dir)
	clear(fs) // hold no frame's bytes past the batch
	tw.frames = fs[:0]
	tw.written.Store(a.toUser + a.toKernel)
	tw.seqGapsShown.Store(a.seq.Missing())
	return tw.err
}

// commit writes the frames of one batch and accounts those written; after
// a write error the rest are discarded.
func (tw *traceWriter) commit(fs []pcapnl.Frame, dir pcapnl.Direction) {
	if len(fs) == 0 {
		return
	}
	a := &tw.acct
	n, err := tw.files.w.WriteFrames(fs)
	if err != nil {
		tw.err = err
		a.discarded += uint64(len(fs) - n)
	}
	for i := range fs[:n] {
		a.dropCounts += fs[i].DropCount
		a.dataBytes += uint64(len(fs[i].Data))
	}
	if dir == pcapnl.ToUser {
		a.toUser += uint64(n)
	} else {
		a.toKernel += uint64(n)
	}
}

// rotate moves the trace to the next file of a rotated set, between two
// batches; a failure is a write error.
func (tw *traceWriter) rotate(t int64) {
	if err := tw.files.rotate(t); err != nil {
		tw.err = err
	}
}

// drops accounts one datagram from the peer and returns the losses of this
// recording just before it, its pcapng drop count: as much of the gap
// before it as the socket's own drops cover (sample asks SO_MEMINFO for
// more when the evidence falls short). The rest of a gap leaves no mark
// here: a user-space peer's drops to us (its EAGAIN) or a gap upstream of
// it, or the module's ENOMEM; the totals at the end tell them apart. An
// unnumbered stream gets the drops of an overrun on its next frame.
func (a *accounting) drops(data []byte, sample func() uint64) uint64 {
	gap, numbered := a.sequence(data)
	var d uint64
	_, _, started := a.seq.Span()
	switch {
	case gap > 0:
		if gap > a.credit {
			a.credit += sample()
		}
		d = min(gap, a.credit)
	case !numbered && !started:
		d = a.credit
	}
	a.credit -= d
	return d
}

// sequence walks the netlink messages of one datagram from the peer and
// returns the number of events missing before it, by nlmsg_seq, and
// whether it held a numbered event.
func (a *accounting) sequence(b []byte) (gap uint64, numbered bool) {
	for m, err := range imp2.Messages(b) {
		if err != nil {
			break
		}
		if m.Header.Type == imp2.TypeEvent {
			a.events++
			gap += a.seq.Observe(m.Header.Seq)
			numbered = numbered || m.Header.Seq != 0
		}
	}
	return gap, numbered
}
