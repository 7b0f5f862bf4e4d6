package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// Why a recording stopped (Summary.Stop), besides the reasons given to
// Recorder.Stop.
const (
	StopCount        = "count"
	StopDuration     = "duration"
	StopWriteError   = "write error"
	StopReceiveError = "receive error"
	StopCanceled     = "canceled"
)

const (
	deadlinePast  = 1 // Unix second of the deadline that wakes a blocked read
	maxStatsTries = 3
	drainIdle     = 20 * time.Millisecond
	drainMax      = 2 * time.Second
)

// Recorder is one recording. The receive loop and the end of the
// conversation (statistics, IMP2_CLOSE) run on the goroutine of Run, so
// that nothing else reads the socket; Stop and Progress may be called from
// any goroutine.
type Recorder struct {
	opts Options
	ran  atomic.Bool

	conn  *imp2.Conn // set under mu
	port  uint32
	files *traceFiles
	tw    *traceWriter
	msgs  []imp2.Message // the receive batch, Batch buffers of SnapLen bytes
	held  []ctlFrame     // frames of the conversation not yet in the trace

	mu       sync.Mutex
	reason   string // why recording stopped; the first reason wins
	stopping atomic.Bool
	started  atomic.Int64 // Unix ns of the start, 0 before

	received atomic.Uint64 // datagrams read before the end
	batches  uint64        // successful reads of the receive loop
	// waits the receive loop slept (Options.Coalesce), and whether the
	// receive buffer was too small for any
	waits      uint64
	waitNoRoom bool
	overruns   atomic.Uint64 // ENOBUFS notifications
	lastMem    uint32        // SO_MEMINFO drops when last asked (memGrowth)

	recvErr   error
	peerStats *imp2.Stats
	statsErr  error
	memInfo   imp2.MemInfo
	memErr    error
	rcvbuf    int
	recvCPU   time.Duration // of the receive loop's thread
	start     time.Time
	end       time.Time
}

// ctlFrame is a frame of the recorder's conversation with the peer, as
// imp2.Conn showed it (Config.OnControl).
type ctlFrame struct {
	t    int64
	dir  pcapnl.Direction
	data []byte
}

// New checks the options (an *OptionError names the first bad one) and
// returns a Recorder ready to Run.
func New(o Options) (*Recorder, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Recorder{opts: o}, nil
}

// Run records with the options o until one of its limits or ctx ends it;
// see Recorder.Run.
func Run(ctx context.Context, o Options) (*Summary, error) {
	r, err := New(o)
	if err != nil {
		return nil, err
	}
	return r.Run(ctx)
}

// Run opens the output, registers with the peer, records until Count
// frames, Duration, Stop or ctx, then asks the peer for its counters and
// unregisters (IMP2_CLOSE). Cancelling ctx stops the recording as Stop
// does and also cuts the wait for the counters short: use Stop for a
// graceful end. The Summary is nil only when the recording did not start;
// the error's type says the outcome (see ErrExists). Run may be called
// once.
func (r *Recorder) Run(ctx context.Context) (*Summary, error) {
	if r.ran.Swap(true) {
		return nil, errors.New("record: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(ctx, func() { r.Stop(StopCanceled) })()
	if err := r.open(); err != nil {
		return nil, err
	}
	r.start = time.Now()
	r.started.Store(r.start.UnixNano())
	if r.opts.Duration > 0 {
		t := time.AfterFunc(r.opts.Duration, func() { r.Stop(StopDuration) })
		defer t.Stop()
	}
	r.receive()
	r.finish(ctx)
	return r.close()
}

// open opens the output and registers; everything that can refuse the
// options or the output does so before the registration, so that a peer
// never counts a consumer that is not going to record (imp2-replay waits
// for real ones).
func (r *Recorder) open() error {
	files, err := openTraceFiles(&r.opts, time.Now())
	if errors.Is(err, ErrExists) {
		return err
	}
	if err != nil {
		return outputError(&r.opts, err, false)
	}
	if err := r.dial(); err != nil {
		files.cur.abandon()
		return err
	}
	err = files.begin(pcapnl.WriterOptions{
		Format:        r.opts.Format,
		Compression:   r.opts.Compression,
		ZstdLevel:     r.opts.ZstdLevel,
		FlushInterval: r.opts.Flush,
		Application:   "imp2-record",
		Description:   fmt.Sprintf("imp2 consumer port %d, peer %d", r.port, r.opts.Peer),
		Family:        uint16(r.opts.Family),
		SnapLen:       r.opts.SnapLen + pcapnl.PseudoHeaderLen,
		Queue:         int(r.opts.Buffer),
	})
	if err != nil {
		r.conn.Close()
		files.cur.abandon()
		return outputError(&r.opts, err, false)
	}
	r.files = files
	r.tw = newTraceWriter(files, &r.opts, func() uint64 { d, _ := r.memGrowth(); return d })
	r.msgs = newBatch(r.opts.Batch, r.opts.SnapLen)
	r.writeHeld()
	return nil
}

// dial registers with the peer. The frames of the exchange reach the
// trace through onControl, as they went over the socket.
func (r *Recorder) dial() error {
	c, err := imp2.Dial(imp2.Config{
		Family: r.opts.Family, Peer: r.opts.Peer, RcvBuf: int(r.opts.RcvBuf),
		NoENOBUFS: r.opts.NoENOBUFS, Ack: r.opts.Ack,
		Blocking:  true, // the receive goroutine only reads; see imp2.Config
		Connect:   true, // only the peer's frames, without msg_name
		OnControl: r.onControl,
	})
	if err != nil {
		return dialError(&r.opts, err)
	}
	r.port = c.PortID()
	r.rcvbuf, _ = c.RcvBuf()
	r.mu.Lock()
	r.conn = c
	if r.reason != "" { // stopped during the registration
		c.SetReadDeadline(time.Unix(deadlinePast, 0))
	}
	r.mu.Unlock()
	return nil
}

// onControl takes the frames imp2.Conn exchanges with the peer on its own.
// What it sends goes into the trace at once (once there is one). What it
// received waits for writeHeld: the datagrams Conn read before the reply
// came are still to be drained from it, and they came first.
func (r *Recorder) onControl(dir imp2.ControlDir, b []byte) {
	f := ctlFrame{t: time.Now().UnixNano(), dir: pcapnl.ToKernel, data: bytes.Clone(b)}
	if dir == imp2.ControlReceived {
		f.dir = pcapnl.ToUser
	}
	if dir == imp2.ControlSent && r.tw != nil {
		r.control(f)
		return
	}
	r.held = append(r.held, f)
}

// writeHeld writes the frames of the conversation onControl held.
func (r *Recorder) writeHeld() {
	for _, f := range r.held {
		r.control(f)
	}
	r.held = nil
}

// control writes a frame of the conversation with the peer.
func (r *Recorder) control(f ctlFrame) {
	r.write(batch{msgs: []imp2.Message{{Buf: f.data, N: len(f.data)}}, keep: 1, t: f.t, dir: f.dir, ctrl: true})
}

// Stop ends the recording for reason (Summary.Stop); it reports whether
// this call did it (false when the recording was already stopping). It
// may be called before Run: the recording then stops as soon as it has
// started.
func (r *Recorder) Stop(reason string) bool {
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

func (r *Recorder) stopReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Progress is a running recording's state, for a status line.
type Progress struct {
	Started   bool          // false until the registration succeeded
	Elapsed   time.Duration // since the start
	Received  uint64        // datagrams read
	FileBytes uint64        // bytes that reached the output
	ENOBUFS   uint64        // overrun notifications
	SeqGaps   uint64        // missing nlmsg_seq numbers so far
	MemInfo   uint32        // the socket's SO_MEMINFO drops
}

// Progress returns the recording's state now.
func (r *Recorder) Progress() Progress {
	start := r.started.Load()
	if start == 0 {
		return Progress{}
	}
	p := Progress{
		Started: true, Elapsed: time.Since(time.Unix(0, start)), Received: r.received.Load(),
		FileBytes: r.files.total.Load(), ENOBUFS: r.overruns.Load(), SeqGaps: r.tw.seqGapsShown.Load(),
	}
	r.mu.Lock()
	c := r.conn
	r.mu.Unlock()
	if mi, err := c.MemInfo(); err == nil {
		p.MemInfo = mi.Drops
	}
	return p
}

// Line formats the state as a status line, with the rate since prev.
func (p Progress) Line(prev Progress) string {
	rate := float64(p.Received-prev.Received) / (p.Elapsed - prev.Elapsed).Seconds()
	return fmt.Sprintf("%s elapsed  %d frames  %.0f/s  %.1f MiB written  drops: enobufs %d, seq gaps %d, meminfo %d",
		p.Elapsed.Truncate(time.Second), p.Received, rate, float64(p.FileBytes)/(1<<20), p.ENOBUFS, p.SeqGaps, p.MemInfo)
}

// newBatch allocates the receive buffers once: n messages, each a fixed
// snaplen view into one slab.
func newBatch(n, snaplen int) []imp2.Message {
	slab := make([]byte, n*snaplen)
	msgs := make([]imp2.Message, n)
	for i := range msgs {
		msgs[i].Buf = slab[i*snaplen : (i+1)*snaplen : (i+1)*snaplen]
	}
	return msgs
}

// write hands a batch to the trace writer and stops the recording at a
// write error (the writer keeps the first, tw.err).
func (r *Recorder) write(b batch) {
	if err := r.tw.write(b); err != nil {
		r.Stop(StopWriteError)
	}
}

// receive is the hot loop: one recvmmsg per batch, one clock read per
// batch, no allocation; the frames are encoded here and compressed and
// written on the trace writer's queue goroutine.
//
// The loop keeps its thread (LockOSThread) so that the thread's CPU time
// is the loop's: Summary.ReceiveCPU, the figure to hold against a C
// consumer's.
func (r *Recorder) receive() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	defer func() { r.recvCPU = threadCPU() - cpu0 }()
	count := r.opts.Count
	co := newCoalescer(r.opts.Coalesce, len(r.msgs), r.rcvbuf)
	defer func() { r.waits, r.waitNoRoom = co.waits, co.tooSmall() }()
	for {
		n, err := r.conn.ReadBatch(r.msgs)
		if err != nil {
			switch {
			case errors.Is(err, imp2.ErrOverrun):
				r.overrun()
				co.overrun()
				continue
			case errors.Is(err, os.ErrDeadlineExceeded) && r.stopping.Load():
			default:
				r.recvErr = err
				r.Stop(StopReceiveError)
			}
			return
		}
		b := batch{msgs: r.msgs[:n], keep: n, t: time.Now().UnixNano(), dir: pcapnl.ToUser}
		r.batches++
		got := r.received.Add(uint64(n))
		if count > 0 && got >= count {
			b.keep = n - int(got-count)
			r.received.Store(count)
			r.Stop(StopCount)
		}
		r.write(b)
		if r.stopping.Load() {
			return
		}
		co.sleep(n, b.t)
	}
}

// overrun counts an ENOBUFS and gives the drops SO_MEMINFO counted since
// it was last asked to the trace writer, as local evidence for the gaps
// to come (at least one event was lost).
func (r *Recorder) overrun() {
	r.overruns.Add(1)
	d, ok := r.memGrowth()
	if !ok {
		d = 1
	}
	r.tw.overrun(d)
}

// memGrowth returns how much the socket's SO_MEMINFO drop count grew since
// the last call, and false if it cannot be read.
func (r *Recorder) memGrowth() (uint64, bool) {
	mi, err := r.conn.MemInfo()
	if err != nil {
		return 0, false
	}
	d := mi.Drops - r.lastMem
	r.lastMem = mi.Drops
	return uint64(d), true
}
