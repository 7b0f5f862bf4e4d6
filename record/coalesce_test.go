package record

import (
	"testing"
	"time"
)

// TestCoalescerWait: after a short read the wait is the time the rate
// that read saw takes to fill a batch, capped by max and by a quarter of
// the receive buffer; none after a full read, the first read, at rates
// where it would gather fewer than minGather, or with max 0.
func TestCoalescerWait(t *testing.T) {
	const us = int64(time.Microsecond)
	for _, c := range []struct {
		name   string
		max    time.Duration
		rcvbuf int
		n      int   // datagrams the read returned
		since  int64 // ns since the previous read returned
		want   time.Duration
	}{
		{"fast: fill a batch", time.Millisecond, 32 << 20, 2, 2 * us, 128 * time.Microsecond},
		{"capped by max", 200 * time.Microsecond, 32 << 20, 2, 10 * us, 200 * time.Microsecond},
		{"full read: more may be queued", time.Millisecond, 32 << 20, 128, 100 * us, 0},
		{"slow: a wait gathers under 4", 200 * time.Microsecond, 32 << 20, 1, 100 * us, 0},
		{"just 4", 200 * time.Microsecond, 32 << 20, 1, 50 * us, 200 * time.Microsecond},
		{"off", 0, 32 << 20, 2, 2 * us, 0},
		{"small rcvbuf: 16 datagrams", time.Millisecond, 64 << 10, 2, 2 * us, 16 * time.Microsecond},
		{"rcvbuf unknown", time.Millisecond, 0, 2, 2 * us, 128 * time.Microsecond},
	} {
		co := newCoalescer(c.max, 128, c.rcvbuf)
		const t0 = int64(1e15)
		if d := co.wait(5, t0); d != 0 {
			t.Errorf("%s: first read waits %v; want 0 (no rate yet)", c.name, d)
		}
		if d := co.wait(c.n, t0+c.since); d != c.want {
			t.Errorf("%s: %d datagrams in %v: wait %v; want %v", c.name, c.n, time.Duration(c.since), d, c.want)
		}
	}
}
