package record

import (
	"runtime"
	"time"
)

// coalescer decides how long the receive loop waits after a read that
// found fewer datagrams than a batch (Options.Coalesce). Behind a sender
// slower than the recorder, every read otherwise takes the one or two
// datagrams that arrived while the last was written, and the recvmmsg,
// the clock and the hand-over to the trace writer, paid per read, become
// most of the cost of a frame.
type coalescer struct {
	max   time.Duration // Options.Coalesce, halved at each overrun; 0 never waits
	batch int           // datagrams one read takes
	// burst bounds a wait by the queue's room at the top rate: a burst
	// that starts during the wait must fit.
	burst time.Duration
	raw   bool   // sleep on the thread (pause), not in the scheduler
	last  int64  // when the previous read returned, ns; 0 before
	waits uint64 // waits slept (Summary.Waits)
}

// minGather is the fewest datagrams a wait is expected to gather: below
// it, at low rates, a wait would be a wake-up more per read, not fewer.
const minGather = 4

// A wait aims at fillShare of a batch, counting the timer slack the
// kernel adds to the sleep: a read the wait filled could not tell whether
// more was queued, so the next read went at once and took the one or two
// that came meanwhile, and reads alternated between full and nearly
// empty (at 100k/s with -coalesce 2ms: 58 a read, 97 with the aim).
const fillShare = 0.9

// A wait may let at most a quarter of the receive buffer into the
// kernel's queue, at frameTruesize bytes a datagram (imp2 events take
// 768 on 6.1, 960 from 6.12), whether they come at the rate the last read saw or in a burst
// at topGap apart (2M/s, faster than the module can send one consumer),
// after the sleep's timer slack (Linux's default, 50µs, by which a
// nanosleep may oversleep).
const (
	queueShare    = 4
	frameTruesize = 1024
	topGap        = 500 * time.Nanosecond
	timerSlack    = 50 * time.Microsecond
)

// newCoalescer waits up to max between reads of batch datagrams from a
// socket whose kernel receive buffer (SO_RCVBUF, as granted) is rcvbuf
// bytes, 0 if unknown.
func newCoalescer(max time.Duration, batch, rcvbuf int) *coalescer {
	c := &coalescer{max: max, batch: batch, burst: max, raw: runtime.GOMAXPROCS(0) > 1}
	if rcvbuf > 0 {
		room := rcvbuf / queueShare / frameTruesize
		c.batch = min(batch, room)
		c.burst = time.Duration(room)*topGap - timerSlack
		// A wait shorter than the slack the kernel may add to it could
		// only gather at rates above the burst's, where reads come back
		// full: none at all, and the summary says why.
		if c.burst < timerSlack {
			c.burst = 0
		}
	}
	return c
}

// wait returns how long to wait before the next read, after one that
// returned n datagrams at t (ns, the batch's time stamp): as long as the
// rate the read saw (n since the previous returned) takes to fill most of
// a batch (fillShare), less the timer slack, up to max and the burst
// bound; 0 when the read was full (more may be queued) or a wait would
// gather fewer than minGather. A step of the clock costs at most one
// wait's worth.
func (c *coalescer) wait(n int, t int64) time.Duration {
	prev := c.last
	c.last = t
	if c.max <= 0 || n >= c.batch || n == 0 || prev == 0 || t <= prev {
		return 0
	}
	per := time.Duration(t-prev) / time.Duration(n) // between two arrivals
	if per <= 0 {
		return 0
	}
	// The kernel may end the sleep its timer slack late, and does when
	// nothing else is due: the aim is for the sleep and the slack.
	d := min(c.max, c.burst, time.Duration(float64(per)*float64(c.batch)*fillShare)-timerSlack)
	if d < per*minGather {
		return 0
	}
	return d
}

// sleep waits before the next read after one of n datagrams at t, less
// the time already spent on them since.
func (c *coalescer) sleep(n int, t int64) {
	d := c.wait(n, t)
	if d <= 0 {
		return
	}
	if d -= time.Duration(time.Now().UnixNano() - t); d <= 0 {
		return
	}
	c.waits++
	if c.raw {
		pause(d)
	} else {
		// With one P, a thread asleep on it would stop the trace
		// writer, the timers and the signal handling with it.
		time.Sleep(d)
	}
}

// tooSmall reports that the receive buffer leaves no room for any wait.
func (c *coalescer) tooSmall() bool { return c.max > 0 && c.burst <= 0 }

// overrun halves the longest wait: the queue overflowed (ENOBUFS), and
// if the waits let it, the next must be shorter.
func (c *coalescer) overrun() { c.max /= 2 }
