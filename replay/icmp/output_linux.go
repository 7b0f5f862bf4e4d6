//go:build linux

package icmp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/imp2"
	inicmp "github.com/imp2/imp2/internal/icmp"
	"github.com/imp2/imp2/internal/mmsg"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/replay"
	"golang.org/x/sys/unix"
)

type icmpOut struct {
	cfg Options
	ctx context.Context
	log func(format string, args ...any)

	topo  *icmpTopo
	fd    int
	sa    unix.RawSockaddrLinklayer
	batch mmsg.Batch
	bufs  [][]byte

	origin  int64 // replay clock start on CLOCK_MONOTONIC
	haveTS0 bool
	ts0     int64
	idx     uint64

	exp      []expectedEvent
	spec     []packetSpec    // batch scratch
	expB     []expectedEvent // batch scratch
	sentOK   []bool          // batch scratch
	stats    Summary
	verifier *verifier
	sum      *Summary // at close
}

func newOutput(o Options) (replay.Output, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Batch < 1 {
		o.Batch = replay.DefaultTiming().Batch
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	return &icmpOut{cfg: o, log: o.Log, fd: -1}, nil
}

func (o *icmpOut) Start(ctx context.Context) error {
	o.ctx = ctx
	t, err := newICMPTopo(ctx, o.cfg.DestNetNS, o.log)
	if err != nil {
		return err
	}
	o.topo = t
	o.log("icmp: %s", t.describe())
	if !t.moduleLoaded() {
		o.log("warning: icmp: the imp2 module is not loaded in %s (no /proc/net/imp2): the packets are sent, but no event is made of them", t.dstPath)
	}
	if err := o.openSocket(); err != nil {
		return err
	}
	if o.cfg.Verify {
		v, err := newVerifier(t, o.cfg)
		if err != nil {
			return err
		}
		o.verifier = v
	}
	return o.waitConsumers(ctx)
}

// moduleLoaded reports whether the imp2 module serves the destination
// namespace: its /proc/net/imp2 is there, as seen from a thread inside.
func (t *icmpTopo) moduleLoaded() bool {
	return t.dst.Do(func() error {
		_, err := os.Stat("/proc/thread-self/net/imp2")
		return err
	}) == nil
}

// openSocket opens the packet socket on veth0 of the source namespace.
func (o *icmpOut) openSocket() error {
	err := o.topo.src.Do(func() error {
		// Protocol 0: the socket receives nothing.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("icmp: packet socket: %w", err)
		}
		o.fd = fd
		return nil
	})
	if err != nil {
		return err
	}
	o.sa = unix.RawSockaddrLinklayer{
		Family: unix.AF_PACKET, Protocol: htons(unix.ETH_P_IP),
		Ifindex: int32(o.topo.srcIfindex), Halen: 6,
	}
	copy(o.sa.Addr[:], o.topo.peerMAC)
	// A full device queue must not block the sender for long.
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(o.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_SNDTIMEO", err)
	}
	n := o.cfg.Batch
	o.batch.Grow(n)
	mmsg.SetAddr(&o.batch, n, &o.sa)
	o.bufs = make([][]byte, n)
	o.spec, o.expB, o.sentOK = make([]packetSpec, n), make([]expectedEvent, n), make([]bool, 0, n)
	slab := make([]byte, n*maxPacketLen)
	for i := range o.bufs {
		o.bufs[i] = slab[i*maxPacketLen : i*maxPacketLen : (i+1)*maxPacketLen]
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// waitConsumers waits for MinConsumers consumers (besides our verifier)
// registered with the module in the destination namespace.
func (o *icmpOut) waitConsumers(ctx context.Context) error {
	want := o.cfg.MinConsumers
	if want <= 0 {
		return nil
	}
	var conn *imp2.Conn
	own := uint32(0)
	if o.verifier != nil {
		conn, own = o.verifier.conn, 1
	} else {
		c, err := dialIn(o.topo.dstPath, imp2.Config{})
		if err != nil {
			return err
		}
		defer c.Close()
		conn, own = c, 1
	}
	o.log("icmp: waiting for %d consumer(s) in %s%s", want, o.topo.dstPath, replay.WaitNote(o.cfg.Wait))
	var end time.Time
	if o.cfg.Wait > 0 {
		end = time.Now().Add(o.cfg.Wait)
	}
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := conn.Stats(sctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("icmp: asking the module for its consumers: %w", err)
		}
		have := int(s.Consumers) - int(own)
		if have >= want {
			return nil
		}
		if !end.IsZero() && time.Now().After(end) {
			return fmt.Errorf("%w: %d of %d consumer(s) registered with the module in %s within the wait of %v",
				replay.ErrNoConsumer, have, want, o.topo.dstPath, o.cfg.Wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Begin learns the replay clock: events are timed against the schedule.
func (o *icmpOut) Begin(c replay.Clock) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	o.origin = ts.Nano() - c.Now()
}

func (o *icmpOut) Send(frames []pcapnl.Frame, ts []int64) error {
	if !o.haveTS0 && len(ts) > 0 {
		// The first frame of a replay is due at offset 0: ts − ts0 is each
		// frame's deadline on the replay clock.
		o.ts0, o.haveTS0 = ts[0], true
	}
	k := 0
	for i := range frames {
		f := &frames[i]
		if o.cfg.Family != 0 && int(f.Family) != o.cfg.Family {
			o.stats.NotEvents++
			continue
		}
		e, err := f.EventOn(f.Family)
		if err != nil {
			o.stats.NotEvents++
			continue
		}
		p := &o.spec[k]
		*p = specFor(&e, o.idx)
		o.idx++
		if e.Extended && !p.lengthSet {
			o.stats.LengthDefaulted++
		}
		if p.fragment() {
			o.stats.Fragments++
		}
		o.bufs[k] = inicmp.AppendPacket(o.bufs[k][:0], &p.Packet)
		o.batch.Set(k, o.bufs[k])
		if o.verifier != nil {
			o.expB[k] = expectedFor(&e, p, ts[i]-o.ts0)
		}
		k++
	}
	o.sendBatch(k)
	if o.verifier != nil {
		// A packet the kernel refused causes no event: not expected.
		for i := range k {
			if o.sentOK[i] {
				o.exp = append(o.exp, o.expB[i])
			}
		}
	}
	return nil
}

// sendBatch sends slots [0, k). A refused packet is counted, marked in
// sentOK and skipped.
func (o *icmpOut) sendBatch(k int) {
	o.sentOK = o.sentOK[:k]
	for i := range o.sentOK {
		o.sentOK[i] = true
	}
	for i := 0; i < k; {
		n, err := o.batch.Send(uintptr(o.fd), i, k, 0)
		o.stats.Packets += uint64(n)
		i += n
		if err == 0 {
			break
		}
		if err == unix.EAGAIN && o.ctx.Err() == nil {
			continue // the device queue was full for SO_SNDTIMEO: try again
		}
		o.stats.SendErrors++
		o.stats.LastError = os.NewSyscallError("sendmmsg", err).Error()
		o.sentOK[i] = false
		i++
	}
}

func (o *icmpOut) FollowsClock() bool              { return true }
func (o *icmpOut) KernelOnly() bool                { return true }
func (o *icmpOut) Name() string                    { return "icmp" }
func (o *icmpOut) Consumers() []imp2.ConsumerStats { return nil }

// close ends the verification (waiting for the last events), then removes
// the topology.
func (o *icmpOut) Close() error {
	var errs []error
	s := o.stats
	if o.topo != nil {
		s.Mode, s.SrcNS, s.Dest, s.Interface = "fresh", o.topo.src.Name, o.topo.dstPath, o.topo.peerName()
		if o.topo.fresh == nil {
			s.Mode, s.NFTTable, s.NoTrack = "existing", o.topo.table, o.topo.notrack
		}
	}
	if o.verifier != nil {
		rep := o.verifier.finish(o.ctx, o.exp, o.origin, o.cfg)
		if o.cfg.TopSpeed {
			rep.EventTiming = nil // no schedule to compare with
		}
		s.Verify = rep
	}
	if o.fd >= 0 {
		errs = append(errs, unix.Close(o.fd))
		o.fd = -1
	}
	if o.topo != nil {
		errs = append(errs, o.topo.close())
	}
	o.sum = &s
	return errors.Join(errs...)
}

func (o *icmpOut) Report() replay.Report {
	if o.sum == nil {
		s := o.stats
		o.sum = &s
	}
	return report{o.sum}
}

// dialIn registers an imp2 consumer in the namespace file path.
func dialIn(path string, cfg imp2.Config) (*imp2.Conn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("icmp: %w", err)
	}
	defer f.Close()
	cfg.NetNS = int(f.Fd())
	c, err := imp2.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("icmp: consumer in %s: %w", path, err)
	}
	return c, nil
}

// verifier is the replay's own consumer in the destination namespace.
type verifier struct {
	conn    *imp2.Conn
	ifindex int32
	rcvbuf  int

	mu       sync.Mutex
	obs      []observedEvent
	foreign  int64
	legacy   int64           // events without tstamp_ns: timed on receipt
	seq      imp2.SeqTracker // FromOne: a registration with the module
	enobufs  uint64
	lastRecv time.Time
	readErr  error
	done     chan struct{}
	quit     atomic.Bool
}

func newVerifier(t *icmpTopo, cfg Options) (*verifier, error) {
	c, err := dialIn(t.dstPath, imp2.Config{RcvBuf: int(cfg.VerifyRcvBuf)})
	if err != nil {
		return nil, fmt.Errorf("icmp: verifying consumer: %w", err)
	}
	rb, _ := c.RcvBuf()
	v := &verifier{conn: c, ifindex: int32(t.peerIndex), rcvbuf: rb, done: make(chan struct{}), lastRecv: time.Now(),
		seq: imp2.SeqTracker{FromOne: true}}
	go v.read()
	return v, nil
}

func (v *verifier) read() {
	defer close(v.done)
	msgs := make([]imp2.Message, 64)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 256)
	}
	for !v.quit.Load() {
		v.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := v.conn.ReadBatch(msgs)
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		now := ts.Nano()
		v.mu.Lock()
		switch {
		case errors.Is(err, imp2.ErrOverrun):
			v.enobufs++
		case errors.Is(err, os.ErrDeadlineExceeded):
		case err != nil:
			v.readErr = err
			v.mu.Unlock()
			return
		}
		for _, m := range msgs[:n] {
			v.take(m.Data(), now)
		}
		if n > 0 {
			v.lastRecv = time.Now()
		}
		v.mu.Unlock()
	}
}

// take records one datagram; the caller holds mu.
func (v *verifier) take(b []byte, now int64) {
	h, err := imp2.ParseHeader(b)
	if err != nil || h.Type != imp2.TypeEvent {
		return // the stats reply, or junk
	}
	v.seq.Observe(h.Seq)
	e, err := imp2.ParseEvent(b[imp2.HeaderLen:h.Len])
	if err != nil {
		return
	}
	if e.Extended && e.IfIndex != v.ifindex {
		v.foreign++
		return
	}
	t := now
	if e.Extended {
		t = int64(e.TimeNs)
	} else {
		v.legacy++
	}
	v.obs = append(v.obs, observedEvent{key: observedKey(&e), t: t})
}

// finish waits until every replayed event is accounted for (received or a
// known loss) or nothing came for VerifyWait, asks the module for its
// counters, unregisters and compares.
func (v *verifier) finish(ctx context.Context, exp []expectedEvent, origin int64, cfg Options) *VerifyReport {
	for ctx.Err() == nil {
		v.mu.Lock()
		accounted := int64(len(v.obs)) + int64(v.seq.Missing())
		idle := time.Since(v.lastRecv)
		v.mu.Unlock()
		if accounted >= int64(len(exp)) || idle >= cfg.VerifyWait {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	rep := &VerifyReport{RcvBuf: v.rcvbuf, Tolerance: cfg.VerifyTolerate, TimeSource: "kernel"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	st, err := v.conn.Stats(ctx)
	cancel()
	v.quit.Store(true)
	<-v.done
	v.conn.Close()
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		rep.StatsError = err.Error()
	} else {
		rep.ModuleSent, rep.ModuleDropped = st.SelfSent, st.SelfDropped
		v.seq.ObserveLast(st.SelfLastSeq) // lost after the last one received
	}
	if v.readErr != nil {
		rep.StatsError = errors.Join(errors.New(rep.StatsError), fmt.Errorf("read: %w", v.readErr)).Error()
	}
	rep.SeqGaps, rep.ENOBUFS, rep.Foreign = v.seq.Missing(), v.enobufs, v.foreign
	if v.legacy > 0 {
		rep.TimeSource = "receive"
	}
	compare(exp, v.obs, origin, rep)
	return rep
}
