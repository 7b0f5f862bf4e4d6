package record

import (
	"strings"
	"testing"
	"time"
)

// TestCoalescerWait: after a short read the wait is the time the rate
// that read saw takes to fill 90% of a batch, less the timer slack, capped by max and by what a
// quarter of the receive buffer holds in a burst; none after a full read,
// the first read, a step back of the clock, at rates where it would
// gather fewer than minGather, with a batch under minGather, or with max
// 0.
func TestCoalescerWait(t *testing.T) {
	const us = int64(time.Microsecond)
	for _, c := range []struct {
		name   string
		max    time.Duration
		batch  int
		rcvbuf int
		n      int   // datagrams the read returned
		since  int64 // ns since the previous read returned
		want   time.Duration
	}{
		{"fast: 90% of a batch, less the slack", time.Millisecond, 128, 32 << 20, 2, 2 * us, 65200 * time.Nanosecond},
		{"capped by max", 200 * time.Microsecond, 128, 32 << 20, 2, 10 * us, 200 * time.Microsecond},
		{"full read: more may be queued", time.Millisecond, 128, 32 << 20, 128, 100 * us, 0},
		{"slow: a wait gathers under 4", 200 * time.Microsecond, 128, 32 << 20, 1, 100 * us, 0},
		{"just 4", 200 * time.Microsecond, 128, 32 << 20, 1, 50 * us, 200 * time.Microsecond},
		{"off", 0, 128, 32 << 20, 2, 2 * us, 0},
		{"clock stepped back", time.Millisecond, 128, 32 << 20, 2, -5 * us, 0},
		{"batch under 4", time.Millisecond, 3, 32 << 20, 2, 2 * us, 0},
		// 2M granted: 512 datagrams a quarter, 256µs at 2M/s, less the slack.
		{"burst bound", time.Millisecond, 1024, 2 << 20, 2, 2 * us, 206 * time.Microsecond},
		// 128K granted (-rcvbuf 64K): 32 datagrams, 16µs of a burst.
		{"small rcvbuf: no wait", time.Millisecond, 128, 128 << 10, 2, 2 * us, 0},
		// The stock rmem_max, 212992, granted twice: 104 datagrams,
		// 52µs of a burst, 2µs after the slack: shorter than the slack.
		{"stock rmem_max: no wait", time.Millisecond, 128, 425984, 2, 2 * us, 0},
		// 800K granted: 200 datagrams, 100µs, 50µs after the slack.
		{"least room to wait", time.Millisecond, 128, 819200, 2, 2 * us, 50 * time.Microsecond},
		{"rcvbuf unknown", time.Millisecond, 128, 0, 2, 2 * us, 65200 * time.Nanosecond},
	} {
		co := newCoalescer(c.max, c.batch, c.rcvbuf)
		if small := strings.HasSuffix(c.name, "rmem_max: no wait") || strings.HasPrefix(c.name, "small rcvbuf"); co.tooSmall() != small {
			t.Errorf("%s: tooSmall %v; want %v", c.name, co.tooSmall(), small)
		}
		const t0 = int64(1e15)
		if d := co.wait(5, t0); d != 0 {
			t.Errorf("%s: first read waits %v; want 0 (no rate yet)", c.name, d)
		}
		if d := co.wait(c.n, t0+c.since); d != c.want {
			t.Errorf("%s: %d datagrams in %v: wait %v; want %v", c.name, c.n, time.Duration(c.since), d, c.want)
		}
	}
}

// TestCoalescerRun: over a run of reads each rate is the last read's
// (the wait before it counts: its datagrams arrived during it), and each
// overrun halves the longest wait.
func TestCoalescerRun(t *testing.T) {
	co := newCoalescer(200*time.Microsecond, 128, 32<<20)
	now := int64(1e15)
	step := func(n int, since time.Duration) time.Duration {
		now += int64(since)
		return co.wait(n, now)
	}
	for i, c := range []struct {
		n     int
		since time.Duration
		want  time.Duration
	}{
		{1, 0, 0}, // the first read: no rate yet
		{2, 2 * time.Microsecond, 65200 * time.Nanosecond}, // 1µs apart: 115µs less the slack
		{128, 130 * time.Microsecond, 0},                   // full: read again at once
		{3, 3 * time.Microsecond, 65200 * time.Nanosecond},
		{100, 150 * time.Microsecond, 122800 * time.Nanosecond}, // 1.5µs apart
		{1, time.Millisecond, 0},                                // slowed down: 1k/s
	} {
		if d := step(c.n, c.since); d != c.want {
			t.Errorf("read %d: %d datagrams after %v: wait %v; want %v", i, c.n, c.since, d, c.want)
		}
	}
	co.overrun()
	if d := step(2, 10*time.Microsecond); d != 100*time.Microsecond {
		t.Errorf("after an overrun: wait %v; want 100µs, half the longest", d)
	}
	for range 20 {
		co.overrun()
	}
	if d := step(2, 2*time.Microsecond); d != 0 {
		t.Errorf("after 21 overruns: wait %v; want none", d)
	}
}
