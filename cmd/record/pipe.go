package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// slot is one receive batch on its way from the receive loop to the
// writer. Slots are allocated once and cycle between the free and full
// channels, so the steady state allocates nothing.
type slot struct {
	msgs []imp2.Message // Buf of each is a fixed view into one slab
	n    int            // datagrams received
	keep int            // msgs[:keep] are written; the rest only accounted
	t    int64          // receive time of the batch, ns since the epoch
	dir  pcapnl.Direction
	late bool // read after the end (while fetching the final statistics)
	// ENOBUFS notifications just before this batch, and the SO_MEMINFO
	// drops the receive loop saw grow at them.
	overruns, memDrops uint64
}

// writerNap is how long the writer sleeps after emptying the queue.
const writerNap = 500 * time.Microsecond

// pipe is the bounded buffer between the receive loop and the writer, and
// the writer goroutine with its accounting. Everything below the channels
// is owned by the writer goroutine until done is closed.
//
// Two choices keep its cost per frame low (measured with perf against the
// C sink, see bench_test.go): free slots are reused last-in first-out, so
// that a writer keeping up cycles through a few cache-hot slots instead of
// the whole buffer; and the writer naps writerNap after emptying the queue,
// so that it wakes a few thousand times a second at most rather than once
// per receive batch.
type pipe struct {
	mu      sync.Mutex
	free    []*slot       // LIFO
	waiting bool          // the receive loop waits for a free slot
	freed   chan struct{} // wakes it
	full    chan *slot
	done    chan struct{}

	w      *pcapnl.Writer
	family uint16
	peer   uint32
	err    error // first write error; later frames are discarded
	onErr  func(error)
	frame  pcapnl.Frame

	// Shared with the progress line and the receive loop.
	written      atomic.Uint64 // frames written
	stalls       atomic.Uint64 // times the receive loop waited for a free slot
	stallNs      atomic.Int64
	maxQueued    atomic.Int64 // most slots waiting for the writer at once
	enqueued     atomic.Int64
	dequeued     atomic.Int64
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

func newPipe(w *pcapnl.Writer, cfg *config, onErr func(error)) *pipe {
	n := cfg.slots()
	p := &pipe{
		freed: make(chan struct{}, 1), full: make(chan *slot, n), done: make(chan struct{}),
		w: w, family: uint16(cfg.family), peer: cfg.peer, onErr: onErr,
	}
	p.acct.fromOne = cfg.peer == 0
	for range n {
		slab := make([]byte, cfg.batch*cfg.snaplen)
		s := &slot{msgs: make([]imp2.Message, cfg.batch)}
		for i := range s.msgs {
			s.msgs[i].Buf = slab[i*cfg.snaplen : (i+1)*cfg.snaplen : (i+1)*cfg.snaplen]
		}
		p.free = append(p.free, s)
	}
	go p.run()
	return p
}

// get returns a free slot, waiting for the writer if there is none: the
// receive loop then stops reading and the kernel queue absorbs the burst;
// what overflows it is dropped by the kernel and counted by all three
// accountings. The waits are reported in the summary.
func (p *pipe) get() *slot {
	if s := p.pop(true); s != nil {
		return s
	}
	t0 := time.Now()
	p.stalls.Add(1)
	for {
		<-p.freed
		if s := p.pop(false); s != nil {
			p.stallNs.Add(int64(time.Since(t0)))
			return s
		}
	}
}

// pop takes the most recently freed slot, or returns nil and, with wait,
// asks release to signal freed.
func (p *pipe) pop(wait bool) *slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		p.waiting = p.waiting || wait
		return nil
	}
	s := p.free[n-1]
	p.free = p.free[:n-1]
	p.waiting = false
	return s
}

// release returns a slot to the free list.
func (p *pipe) release(s *slot) {
	p.mu.Lock()
	p.free = append(p.free, s)
	wake := p.waiting
	p.mu.Unlock()
	if wake {
		select {
		case p.freed <- struct{}{}:
		default:
		}
	}
}

// put hands a filled slot to the writer.
func (p *pipe) put(s *slot) {
	if q := p.enqueued.Add(1) - p.dequeued.Load(); q > p.maxQueued.Load() {
		p.maxQueued.Store(q) // only the receive loop stores: no lost update
	}
	p.full <- s
}

// control queues one frame the recorder sent or reconstructed.
func (p *pipe) control(t int64, dir pcapnl.Direction, b []byte) {
	s := p.get()
	s.n, s.keep, s.t, s.dir, s.late = 1, 1, t, dir, false
	s.overruns, s.memDrops = 0, 0
	m := &s.msgs[0]
	m.N = copy(m.Buf, b)
	m.Truncated, m.PortID = m.N < len(b), 0
	p.put(s)
}

// close ends the writer goroutine after the queued slots and waits for it.
func (p *pipe) close() {
	close(p.full)
	<-p.done
}

func (p *pipe) run() {
	defer close(p.done)
	for s := range p.full {
		p.take(s)
		for {
			select {
			case s, ok := <-p.full:
				if !ok {
					return
				}
				p.take(s)
				continue
			default:
			}
			break
		}
		time.Sleep(writerNap)
	}
}

func (p *pipe) take(s *slot) {
	p.dequeued.Add(1)
	p.writeSlot(s)
	p.release(s)
}

func (p *pipe) writeSlot(s *slot) {
	a := &p.acct
	f := &p.frame
	f.Time, f.Direction, f.Family = s.t, s.dir, p.family
	pendingMem := s.memDrops
	for i := range s.msgs[:s.n] {
		m := &s.msgs[i]
		if m.Truncated {
			a.truncated++
		}
		var gap uint64
		numbered := false
		if s.dir == pcapnl.ToUser && m.PortID == p.peer {
			gap, numbered = a.sequence(m.Data())
		}
		if i >= s.keep {
			a.notRecorded++
			continue
		}
		if s.late {
			a.lateFrames++
		}
		if !numbered && pendingMem > 0 {
			// An unnumbered stream: the drops SO_MEMINFO counted at the
			// overrun go on the next frame. Numbered streams place their
			// drops exactly, by their gaps.
			gap, pendingMem = pendingMem, 0
		}
		f.DropCount, f.Data = gap, m.Data()
		if p.err == nil {
			if err := p.w.WriteFrame(f); err != nil {
				p.err = err
				p.onErr(err)
			}
		}
		if p.err != nil {
			continue
		}
		a.dropCounts += gap
		a.dataBytes += uint64(m.N)
		if s.dir == pcapnl.ToUser {
			a.toUser++
		} else {
			a.toKernel++
		}
	}
	f.Data = nil
	p.written.Store(a.toUser + a.toKernel)
	p.seqGapsShown.Store(a.seqGaps)
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
