package main

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// Why recording stopped.
const (
	stopCount     = "count"
	stopDuration  = "duration"
	stopWriteErr  = "write error"
	stopRecvErr   = "receive error"
	stopSIGINT    = "SIGINT"
	stopSIGTERM   = "SIGTERM"
	deadlinePast  = 1 // Unix second of the deadline that wakes a blocked read
	maxStatsTries = 3
	drainIdle     = 20 * time.Millisecond
	drainMax      = 2 * time.Second
)

// recorder owns the consumer connection: the receive loop and the end of
// the conversation (statistics, IMP2_CLOSE) run on one goroutine, so that
// nothing else reads the socket.
type recorder struct {
	cfg  *config
	conn *imp2.Conn
	port uint32
	tw   *traceWriter
	msgs []imp2.Message // the receive batch, -batch buffers of -snaplen bytes

	mu       sync.Mutex
	reason   string // why recording stopped; the first reason wins
	stopping atomic.Bool
	abort    context.CancelFunc // cuts the wait for the final statistics short

	// seq mirrors imp2.Conn's nlmsg_seq counter, which numbers the control
	// messages it sends: 1 was the registration, then one per Stats call
	// and one for Close. The ToKernel frames carry the same numbers; the
	// host tests check them against what the peer received.
	seq uint32

	received atomic.Uint64 // datagrams read before the end
	batches  uint64        // successful reads of the receive loop
	overruns atomic.Uint64 // ENOBUFS notifications
	lastMem  uint32        // SO_MEMINFO drops when last asked (memGrowth)

	recvErr   error
	peerStats *imp2.Stats
	statsErr  error
	memInfo   imp2.MemInfo
	memErr    error
	closeErr  error
	rcvbuf    int
	start     time.Time
	end       time.Time
}

// stop ends the recording for reason; it reports whether this call did it
// (false when the recording was already stopping).
func (r *recorder) stop(reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reason != "" {
		return false
	}
	r.reason = reason
	r.stopping.Store(true)
	if r.conn != nil {
		r.conn.SetReadDeadline(time.Unix(deadlinePast, 0))
	}
	return true
}

func (r *recorder) stopReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// dial registers with the peer and returns the frames of the exchange for
// the trace: the IMP2_U_PID sent and, with -ack, the acknowledgement
// received, both re-encoded exactly as they went over the wire.
func (r *recorder) dial() (reg, ack []byte, tReg, tAck int64, err error) {
	tReg = time.Now().UnixNano()
	c, err := imp2.Dial(imp2.Config{
		Family: r.cfg.family, Peer: r.cfg.peer, RcvBuf: r.cfg.rcvbuf,
		NoENOBUFS: r.cfg.noENOBUFS, Ack: r.cfg.ack,
		Blocking: true, // the receive goroutine only reads; see imp2.Config
	})
	tAck = time.Now().UnixNano()
	if err != nil {
		return nil, nil, 0, 0, err
	}
	r.seq = 1
	r.port = c.PortID()
	r.rcvbuf, _ = c.RcvBuf()
	var flags uint16
	if r.cfg.ack {
		flags = imp2.FlagRequest | imp2.FlagAck
	}
	reg = imp2.AppendControl(nil, imp2.TypeRegister, flags, r.seq, r.port)
	if r.cfg.ack {
		ack = ackFrame(reg, r.port)
	}
	r.mu.Lock()
	r.conn = c
	if r.reason != "" { // a signal came during the registration
		c.SetReadDeadline(time.Unix(deadlinePast, 0))
	}
	r.mu.Unlock()
	return reg, ack, tReg, tAck, nil
}

// ackFrame is the NLMSG_ERROR with error 0 that the module (netlink_ack)
// and imp2.Server send for a successful request: NLM_F_CAPPED, the
// request's sequence number, the requester's port, then the request header.
func ackFrame(req []byte, port uint32) []byte {
	const capped = 0x100
	h, _ := imp2.ParseHeader(req)
	b := make([]byte, imp2.HeaderLen+4, 2*imp2.HeaderLen+4)
	imp2.PutHeader(b, imp2.Header{Len: 2*imp2.HeaderLen + 4, Type: unix.NLMSG_ERROR, Flags: capped, Seq: h.Seq, PID: port})
	return append(b, req[:imp2.HeaderLen]...)
}

// statsFrame is the IMP2_STATS reply as the module and imp2.Server send it.
func statsFrame(seq, port uint32, s imp2.Stats) []byte {
	b := make([]byte, imp2.HeaderLen, imp2.HeaderLen+imp2.StatsLen)
	imp2.PutHeader(b, imp2.Header{Len: imp2.HeaderLen + imp2.StatsLen, Type: imp2.TypeStats, Seq: seq, PID: port})
	return imp2.AppendStats(b, s)
}

// newBatch allocates the receive buffers once: -batch messages, each a
// fixed -snaplen view into one slab.
func newBatch(cfg *config) []imp2.Message {
	slab := make([]byte, cfg.batch*cfg.snaplen)
	msgs := make([]imp2.Message, cfg.batch)
	for i := range msgs {
		msgs[i].Buf = slab[i*cfg.snaplen : (i+1)*cfg.snaplen : (i+1)*cfg.snaplen]
	}
	return msgs
}

// write hands a batch to the trace writer and stops the recording at a
// write error (the writer keeps the first, tw.err).
func (r *recorder) write(b batch) {
	if err := r.tw.write(b); err != nil {
		r.stop(stopWriteErr)
	}
}

// control writes a frame of the conversation with the peer, sent or
// received at t.
func (r *recorder) control(t int64, dir pcapnl.Direction, b []byte) {
	r.write(batch{msgs: []imp2.Message{{Buf: b, N: len(b)}}, keep: 1, t: t, dir: dir, ctrl: true})
}

// receive is the hot loop: one recvmmsg per batch, one clock read per
// batch, no allocation; the frames are encoded here and compressed and
// written on the trace writer's queue goroutine.
func (r *recorder) receive() {
	count := r.cfg.count
	for {
		n, err := r.conn.ReadBatch(r.msgs)
		if err != nil {
			switch {
			case errors.Is(err, imp2.ErrOverrun):
				r.overrun()
				continue
			case errors.Is(err, os.ErrDeadlineExceeded) && r.stopping.Load():
			default:
				r.recvErr = err
				r.stop(stopRecvErr)
			}
			return
		}
		b := batch{msgs: r.msgs[:n], keep: n, t: time.Now().UnixNano(), dir: pcapnl.ToUser}
		r.batches++
		got := r.received.Add(uint64(n))
		if count > 0 && got >= count {
			b.keep = n - int(got-count)
			r.received.Store(count)
			r.stop(stopCount)
		}
		r.write(b)
		if r.stopping.Load() {
			return
		}
	}
}

// overrun counts an ENOBUFS and gives the drops SO_MEMINFO counted since
// it was last asked to the trace writer, as local evidence for the gaps
// to come (at least one event was lost).
func (r *recorder) overrun() {
	r.overruns.Add(1)
	d, ok := r.memGrowth()
	if !ok {
		d = 1
	}
	r.tw.overrun(d)
}

// memGrowth returns how much the socket's SO_MEMINFO drop count grew since
// the last call, and false if it cannot be read.
func (r *recorder) memGrowth() (uint64, bool) {
	mi, err := r.conn.MemInfo()
	if err != nil {
		return 0, false
	}
	d := mi.Drops - r.lastMem
	r.lastMem = mi.Drops
	return uint64(d), true
}

// finish ends the conversation: the peer's counters, SO_MEMINFO, and
// IMP2_CLOSE. Frames read meanwhile are late: written unless -count was
// reached.
func (r *recorder) finish(ctx context.Context) {
	if r.stopReason() != stopCount && r.stopReason() != stopWriteErr {
		r.drainQueued()
	}
	r.end = time.Now()
	// From here on a read only returns what is already queued in Conn.
	r.conn.SetReadDeadline(time.Unix(deadlinePast, 0))
	if r.cfg.statsTimeout > 0 {
		r.fetchStats(ctx)
	}
	r.memInfo, r.memErr = r.conn.MemInfo()
	r.seq++
	r.control(time.Now().UnixNano(), pcapnl.ToKernel, imp2.AppendControl(nil, imp2.TypeClose, 0, r.seq, r.port))
	r.closeErr = r.conn.Close()
}

// drainQueued records what was queued on the socket when the recording
// stopped: it reads until a batch comes back short (the queue was empty at
// that moment), nothing comes for drainIdle, or drainMax has passed (a
// producer faster than the recorder never lets the queue empty).
func (r *recorder) drainQueued() {
	limit := time.Now().Add(drainMax)
	for time.Now().Before(limit) {
		// Under mu: stop sets its deadline under mu too, so it cannot
		// land after this one.
		r.mu.Lock()
		r.conn.SetReadDeadline(time.Now().Add(drainIdle))
		r.mu.Unlock()
		n, err := r.conn.ReadBatch(r.msgs)
		if errors.Is(err, imp2.ErrOverrun) {
			r.overrun()
			continue
		}
		if err != nil {
			return
		}
		r.received.Add(uint64(n))
		r.write(batch{msgs: r.msgs[:n], keep: n, t: time.Now().UnixNano(), dir: pcapnl.ToUser})
		if n < len(r.msgs) {
			return
		}
	}
}

// fetchStats asks the peer for its counters. A reply can be lost when
// the queue overflowed just before it (the kernel drops it like any
// event), so it asks up to maxStatsTries times within -stats-timeout.
func (r *recorder) fetchStats(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.statsTimeout)
	defer cancel()
	for range maxStatsTries {
		r.seq++
		seq := r.seq
		r.control(time.Now().UnixNano(), pcapnl.ToKernel, imp2.AppendControl(nil, imp2.TypeGetStats, imp2.FlagRequest, seq, r.port))
		// No ReadBatch is running, so Stats reads the socket itself and
		// keeps the frames it meets for the next ReadBatch.
		try, cancelTry := context.WithTimeout(ctx, r.cfg.statsTimeout/maxStatsTries)
		st, err := r.conn.Stats(try)
		cancelTry()
		r.drainLate()
		if err == nil {
			r.control(time.Now().UnixNano(), pcapnl.ToUser, statsFrame(seq, r.port, st))
			r.peerStats, r.statsErr = &st, nil
			return
		}
		r.statsErr = err
		if ctx.Err() != nil {
			return
		}
	}
}

// drainLate passes on the frames Stats read while waiting for its reply.
func (r *recorder) drainLate() {
	for {
		n, err := r.conn.ReadBatch(r.msgs)
		if errors.Is(err, imp2.ErrOverrun) {
			// Met while Stats waited; the frames after it are still to come.
			r.overrun()
			continue
		}
		if err != nil || n == 0 {
			return
		}
		b := batch{msgs: r.msgs[:n], keep: n, t: time.Now().UnixNano(), dir: pcapnl.ToUser, late: true}
		if r.stopReason() == stopCount {
			b.keep = 0
		}
		r.write(b)
	}
}
