package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/internal/results"
)

// sampleSpec is one repetition of one sweep step.
type sampleSpec struct {
	rate      int // offered pps
	duration  time.Duration
	rcvbuf    int // effective receive buffer (sk_rcvbuf), bytes
	delay     time.Duration
	noENOBUFS bool
	// latency off measures the consumer without recording latencies: the
	// peer of the overhead figure.
	latency bool
	probe   bool     // measure BurstHeld first
	capture *capture // nil, or where to copy the frames
}

const (
	drainIdle  = 200 * time.Millisecond // no event for this long after the flood: done
	drainLimit = DrainLimit
	// pollEvery bounds each wait of a loop that must notice a cancelled
	// context (a signal) while it waits for the kernel.
	pollEvery      = 50 * time.Millisecond
	queueEvery     = time.Millisecond
	maxQueuePoints = 10000
	// Latencies from 1 ns to a minute at 3 significant digits.
	histMax = int64(time.Minute)
)

// measure runs one sample (the kernel doubles a requested buffer size,
// so consumers ask for half of spec.rcvbuf): a fresh consumer in the destination namespace,
// a flood from the source namespace, and the consumer draining until the
// flood ended and the queue stayed empty for drainIdle.
func measure(ctx context.Context, topo *netns.Topology, src source, spec sampleSpec) (results.Sample, consumerCost, error) {
	var s results.Sample
	if spec.probe {
		held, err := probeBurst(ctx, topo, src, spec)
		if err != nil {
			return s, consumerCost{}, fmt.Errorf("burst probe: %w", err)
		}
		s.BurstHeld = &held
	}
	c, err := src.open(spec.rcvbuf/2, spec.noENOBUFS)
	if err != nil {
		return s, consumerCost{}, err
	}
	defer c.close()
	mi, err := c.memInfo()
	if err != nil {
		return s, consumerCost{}, err
	}

	count := int(float64(spec.rate)*spec.duration.Seconds()) + 1
	f, err := newFlood(topo, flood.Config{Dst: netns.DstAddr, Rate: spec.rate, Count: count, Duration: spec.duration})
	if err != nil {
		return s, consumerCost{}, err
	}
	defer f.Close()

	origin := pace.Monotonic()
	q := startQueueSampler(c, origin)
	done := make(chan floodDone, 1)
	go func() {
		r, err := f.Run(ctx)
		done <- floodDone{r, err}
	}()

	st := newStats(spec.latency, origin)
	cost, fr, err := st.consume(ctx, c, f.Schedule(), spec, done)
	queue := q.stop()
	if err != nil {
		return s, cost, err
	}
	if fr.err != nil && !errors.Is(fr.err, context.Canceled) {
		return s, cost, fr.err
	}
	if ctx.Err() != nil {
		return s, cost, ctx.Err()
	}

	s.Duration = fr.r.Elapsed
	s.OfferedPPS = float64(spec.rate)
	s.AchievedPPS = fr.r.Rate
	s.Sent = int64(fr.r.Sent)
	s.Received = st.received
	if s.Sent > 0 {
		s.DeliveryRatio = float64(s.Received) / float64(s.Sent)
	}
	if err := st.sentinel(ctx, topo, c); err != nil {
		return s, cost, err
	}
	s.Queue = st.queueResult(int64(mi.RcvBuf), queue)
	if err := st.fillDrops(ctx, c, &s.Drops, spec.noENOBUFS); err != nil {
		return s, cost, err
	}
	if spec.latency {
		if s.Unicast, err = results.NewLatency(st.unicast); err != nil {
			return s, cost, err
		}
		if s.EndToEnd, err = results.NewLatency(st.e2e); err != nil {
			return s, cost, err
		}
	}
	return s, cost, nil
}

// newFlood prepares a flood whose socket lives in the source namespace.
func newFlood(topo *netns.Topology, cfg flood.Config) (*flood.Flood, error) {
	var f *flood.Flood
	err := topo.Src.Do(func() error {
		var err error
		f, err = flood.New(cfg)
		return err
	})
	return f, err
}

// probeBurst sends a burst far larger than the receive buffer to a consumer
// that does not read, then counts what it holds: the kernel makes that
// rcvbuf/truesize, a count that a regression gate can compare exactly.
func probeBurst(ctx context.Context, topo *netns.Topology, src source, spec sampleSpec) (int64, error) {
	c, err := src.open(spec.rcvbuf/2, true)
	if err != nil {
		return 0, err
	}
	defer c.close()
	mi, err := c.memInfo()
	if err != nil {
		return 0, err
	}
	// Every event costs more than 256 bytes of truesize (a ring record
	// less: the consumer says how much).
	per := 256
	if s, ok := c.(interface{ eventBytes() int }); ok {
		per = s.eventBytes()
	}
	if _, _, err := burst(ctx, topo, c, int(mi.RcvBuf)/per+64); err != nil {
		return 0, err
	}
	var held int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		err := c.read(time.Now().Add(pollEvery), func(*event) { held++ })
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if queueEmpty(c) {
				return held, nil
			}
			continue
		}
		if err != nil && !errors.Is(err, imp2.ErrOverrun) {
			return 0, err
		}
	}
}

// burst sends n packets unpaced and returns once every event of the burst
// has been queued to c or dropped (under emulation, and behind a slow
// producer, the events trail the sends by a long way), with the flood's
// result and schedule. A reader starting earlier would count later events
// as held (an ab run against a module delayed 3 ms per event saw 504, and
// later 277 to 443, of 277).
func burst(ctx context.Context, topo *netns.Topology, c consumer, n int) (flood.Result, *flood.Schedule, error) {
	f, err := newFlood(topo, flood.Config{Dst: netns.DstAddr, Count: n, Duration: 30 * time.Second})
	if err != nil {
		return flood.Result{}, nil, err
	}
	defer f.Close()
	base, exact, err := c.handled()
	if err != nil {
		return flood.Result{}, nil, err
	}
	r, err := f.Run(ctx)
	if err != nil {
		return r, nil, err
	}
	if exact {
		err = handledAll(ctx, c.handled, base+int64(r.Sent))
	} else {
		err = settle(ctx, c)
	}
	if err != nil {
		return r, nil, fmt.Errorf("after a burst of %d packets: %w", n, err)
	}
	return r, f.Schedule(), nil
}

// handledLimit bounds the wait for a producer to handle a burst. It is
// generous: a slow module in a loaded VM stalls its softirq for well over
// 100 ms at a time.
const handledLimit = 30 * time.Second

// handledAll waits until the producer has handled want events for a
// consumer (handled: its count, consumer.handled):
// then nothing more of the burst can arrive and the queue is final. Every
// packet sent reaches the hook on the namespaces' veth pair, so the wait
// only ends early on packets lost before the hook (a backlog overflow),
// which the error names.
func handledAll(ctx context.Context, handled func() (int64, bool, error), want int64) error {
	var got int64
	for end := time.Now().Add(handledLimit); time.Now().Before(end); {
		var err error
		if got, _, err = handled(); err != nil || got >= want {
			return err
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the module handled %d of the %d events for the consumer within %v (packets lost before its hook, e.g. to a full backlog queue, never reach it)", got, want, handledLimit)
}

// settle waits until c's receive queue and its drop count stop changing,
// for producers that count nothing per consumer: settled means nothing
// more arrives, queued or dropped, for 5 readings 20 ms apart. A stall
// longer than that still passes for settled.
func settle(ctx context.Context, c consumer) error {
	const settled = 5
	var last imp2.MemInfo
	same := 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && same < settled; {
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
		mi, err := c.memInfo()
		if err != nil {
			return err
		}
		if mi.RmemAlloc == last.RmemAlloc && mi.Drops == last.Drops && last.RmemAlloc > 0 {
			same++
		} else {
			last, same = mi, 0
		}
	}
	if same < settled {
		return errors.New("the receive queue did not settle")
	}
	return nil
}

// stats accumulates what the consumer saw in one sample.
type stats struct {
	latency      bool
	unicast, e2e *hdrhistogram.Histogram
	received     int64
	overruns     int64
	seqs         imp2.SeqTracker
	unmatched    int64 // events whose packet number the flood never scheduled
	queue        *queueTrace
}

func newStats(latency bool, origin int64) *stats {
	st := &stats{latency: latency, queue: newQueueTrace(origin)}
	if latency {
		st.unicast = hdrhistogram.New(1, histMax, 3)
		st.e2e = hdrhistogram.New(1, histMax, 3)
	}
	return st
}

type floodDone struct {
	r   flood.Result
	err error
}

// consumerCost is the consumer thread's CPU time and event count, for the
// overhead figure.
type consumerCost struct {
	cpu    time.Duration
	events int64
}

// consume reads until the flood is done and the queue stayed idle, on a
// locked thread so that its CPU time can be measured alone.
func (st *stats) consume(ctx context.Context, c consumer, sched *flood.Schedule, spec sampleSpec, done <-chan floodDone) (consumerCost, floodDone, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()

	var (
		fr       floodDone
		finished bool
		now      int64
	)
	cancelled := ctx.Done()
	onEvent := func(e *event) {
		select {
		case <-cancelled:
			return // the sample is dropped: do not spin through the batch
		default:
		}
		st.received++
		st.queue.observe(e, st.seqs.Observe(e.seq), now)
		if st.latency {
			if e.unicastNs > 0 {
				st.unicast.RecordValue(max(now-e.unicastNs, 1))
			}
			if t, ok := sched.At(e.number); ok {
				st.e2e.RecordValue(max(now-t, 1))
			} else {
				st.unmatched++
			}
		}
		if spec.capture != nil {
			spec.capture.add(now, e.raw)
		}
		if spec.delay > 0 {
			spin(ctx, spec.delay)
		}
	}
	hard := time.Now().Add(spec.duration + drainLimit)
	for {
		if !finished {
			select {
			case fr = <-done:
				finished = true
			default:
			}
		}
		wait := 50 * time.Millisecond
		if finished {
			wait = drainIdle
		}
		err := c.read(time.Now().Add(wait), func(e *event) {
			if now == 0 {
				now = pace.Monotonic()
			}
			onEvent(e)
		})
		now = 0
		switch {
		case err == nil:
		case errors.Is(err, imp2.ErrOverrun):
			st.overruns++
		case errors.Is(err, os.ErrDeadlineExceeded):
			if finished && queueEmpty(c) {
				return consumerCost{threadCPU() - cpu0, st.received}, fr, nil
			}
		default:
			return consumerCost{}, fr, err
		}
		if ctx.Err() != nil || time.Now().After(hard) {
			if !finished {
				fr = <-done
			}
			return consumerCost{threadCPU() - cpu0, st.received}, fr, ctx.Err()
		}
	}
}

// queueEmpty ends a drain: a read deadline alone cannot, because a stalled
// machine (qemu under load) can pass it before the read even starts.
func queueEmpty(c consumer) bool {
	mi, err := c.memInfo()
	return err != nil || mi.RmemAlloc == 0
}

// sentinel sends one packet after the queue drained and reads its event:
// its sequence number reveals events lost after the last one read, which
// no later event would show as a gap.
func (st *stats) sentinel(ctx context.Context, topo *netns.Topology, c consumer) error {
	f, err := newFlood(topo, flood.Config{Dst: netns.DstAddr, Count: 1, Duration: time.Second})
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Run(ctx); err != nil {
		return err
	}
	got := false
	for deadline := time.Now().Add(2 * time.Second); !got; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("the sentinel packet's event did not arrive")
		}
		wait := time.Now().Add(pollEvery)
		if wait.After(deadline) {
			wait = deadline
		}
		err := c.read(wait, func(e *event) {
			if !got {
				st.queue.observe(e, st.seqs.Observe(e.seq), pace.Monotonic())
				got = true
			}
		})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, imp2.ErrOverrun) {
			return err
		}
	}
	return nil
}

// queueResult is the sample's queue: exact when every event carried the
// module's queue extension, else the SO_MEMINFO readings.
func (st *stats) queueResult(rcvbuf int64, sampled []results.QueueSample) results.Queue {
	if st.queue.exact() {
		return st.queue.result(rcvbuf)
	}
	q := results.Queue{RcvBuf: rcvbuf, Method: results.QueueSampled, Samples: sampled}
	for _, p := range sampled {
		q.PeakBytes = max(q.PeakBytes, p.RmemAlloc)
	}
	return q
}

// fillDrops gathers every accounting of lost events and reconciles them.
func (st *stats) fillDrops(ctx context.Context, c consumer, d *results.Drops, noENOBUFS bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	dropped, ok, err := c.sourceDrops(ctx)
	if err != nil {
		return fmt.Errorf("asking the producer for its drop count: %w", err)
	}
	if ok {
		d.ModuleEAGAIN = &dropped
	}
	gaps := int64(st.seqs.Missing())
	d.SeqGaps = &gaps
	if c.kernelQueue() {
		mi, err := c.memInfo()
		if err != nil {
			return err
		}
		drops := int64(mi.Drops)
		d.MeminfoDrops = &drops
		if !noENOBUFS {
			d.ENOBUFS = &st.overruns
		}
	}
	d.Reconcile()
	return nil
}

// spin busy-waits: a model of per-message work, which sleeping is not. It
// ends early when ctx is done, so that a signal during a long delay stops
// the sample at once.
func spin(ctx context.Context, d time.Duration) {
	done := ctx.Done()
	for end := pace.Monotonic() + int64(d); pace.Monotonic() < end; {
		select {
		case <-done:
			return
		default:
		}
	}
}

// sleepCtx sleeps for d or until ctx is done, then with its error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// queueSampler reads rmem_alloc every queueEvery while a sample runs.
type queueSampler struct {
	done   chan struct{}
	wg     sync.WaitGroup
	points []results.QueueSample
}

func startQueueSampler(c consumer, origin int64) *queueSampler {
	q := &queueSampler{done: make(chan struct{}), points: make([]results.QueueSample, 0, maxQueuePoints)}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		t := time.NewTicker(queueEvery)
		defer t.Stop()
		for len(q.points) < maxQueuePoints {
			select {
			case <-q.done:
				return
			case <-t.C:
				// Stamped after the read: a tick's own time can be out of
				// order with a late receive (seen under qemu).
				if mi, err := c.memInfo(); err == nil {
					q.points = append(q.points, results.QueueSample{Offset: time.Duration(pace.Monotonic() - origin), RmemAlloc: int64(mi.RmemAlloc)})
				}
			}
		}
	}()
	return q
}

func (q *queueSampler) stop() []results.QueueSample {
	close(q.done)
	q.wg.Wait()
	return q.points
}
