package record

import "time"

// coalescer decides how long the receive loop waits after a read that
// found fewer datagrams than a batch (Options.Coalesce). Behind a sender
// slower than the recorder, every read otherwise takes the one or two
// datagrams that arrived while the last was written, and the recvmmsg,
// the clock and the hand-over to the trace writer, paid per read, become
// most of the cost of a frame.
type coalescer struct {
	max   time.Duration // Options.Coalesce; 0 never waits
	batch int           // datagrams one read takes
	last  int64         // when the previous read returned, ns; 0 before
}

// minGather is the fewest datagrams a wait is expected to gather: below
// it, at low rates, a wait would be a wake-up more per read, not fewer.
const minGather = 4

// queueShare bounds what a wait may let into the kernel's queue: at most
// this fraction of the receive buffer, at frameTruesize bytes a datagram
// (imp2 events take 768-832), so that a small -rcvbuf does not overflow
// because the recorder chose to wait.
const (
	queueShare    = 4
	frameTruesize = 1024
)

func newCoalescer(max time.Duration, batch, rcvbuf int) *coalescer {
	if room := rcvbuf / queueShare / frameTruesize; rcvbuf > 0 && room < batch {
		batch = room
	}
	return &coalescer{max: max, batch: batch}
}

// wait returns how long to wait before the next read, after one that
// returned n datagrams at t: as long as the rate the read saw (n since the
// previous returned) takes to fill a batch, up to max, and 0 when the read
// was full (more may be queued) or a wait would gather fewer than
// minGather.
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
	d := min(c.max, per*time.Duration(c.batch))
	if d < per*minGather {
		return 0
	}
	return d
}
