package bench

import (
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/results"
)

// A consumer that reads nothing for a while: 21 events of 768 bytes fill a
// 16 KiB queue, the next 5 are refused, one read batch empties the queue,
// and the event after the gap finds it empty.
func TestQueueTraceOverflow(t *testing.T) {
	const ts, rcvbuf = 768, 16384
	origin := int64(1_000_000)
	us := func(n int64) int64 { return origin + n*1000 }
	q := newQueueTrace(origin)
	var seqs imp2.SeqTracker
	for k := int64(1); k <= 21; k++ {
		e := event{seq: uint32(k), unicastNs: us(k), hasQueue: true, rmemAlloc: k * ts, truesize: ts}
		q.observe(&e, seqs.Observe(e.seq), us(100))
	}
	e := event{seq: 27, unicastNs: us(200), hasQueue: true, rmemAlloc: ts, truesize: ts, dropRmem: 21 * ts}
	q.observe(&e, seqs.Observe(e.seq), us(250))
	if !q.exact() {
		t.Fatal("trace not exact")
	}
	r := q.result(rcvbuf)
	if r.Method != results.QueueExact || r.PeakBytes != 21*ts || r.TrueSize != ts || r.GapEvents() != int64(seqs.Missing()) {
		t.Fatalf("result %+v, want exact, peak %d, truesize %d, %d gap events", r, 21*ts, ts, seqs.Missing())
	}
	want := results.QueueGap{From: 21 * time.Microsecond, To: 200 * time.Microsecond, Events: 5, DropRmem: 21 * ts}
	if len(r.Gaps) != 1 || r.Gaps[0] != want {
		t.Errorf("gaps %+v, want [%+v]", r.Gaps, want)
	}
	// 21 enqueues, the batch read at 100 µs (empty after it), the last
	// event's enqueue and its read.
	if len(r.Samples) != 24 || r.Samples[21] != (results.QueueSample{Offset: 100 * time.Microsecond}) ||
		r.Samples[22] != (results.QueueSample{Offset: 200 * time.Microsecond, RmemAlloc: ts}) || r.Samples[23].RmemAlloc != 0 {
		t.Errorf("samples %v", r.Samples)
	}
	if err := r.DropsAtLimit(); err != nil {
		t.Error(err)
	}
	r.Gaps[0].DropRmem = rcvbuf - ts // room for one more: not a full queue's refusal
	if err := r.DropsAtLimit(); err == nil {
		t.Error("DropsAtLimit accepted a refusal with room for one more event")
	}
}

// The read batches decide what is left: events queued after a batch's read
// stay queued.
func TestQueueTraceReadBatches(t *testing.T) {
	const ts = 500
	q := newQueueTrace(0)
	var seqs imp2.SeqTracker
	// Events at 10, 20, 30 µs; the first two read in one batch at 25 µs,
	// the third at 40 µs.
	for i, d := range []int64{25, 25, 40} {
		k := int64(i + 1)
		e := event{seq: uint32(k), unicastNs: k * 10_000, hasQueue: true, rmemAlloc: k * ts, truesize: ts}
		if k == 3 {
			e.rmemAlloc = ts // the batch at 25 µs emptied the queue
		}
		q.observe(&e, seqs.Observe(e.seq), d*1000)
	}
	r := q.result(1 << 20)
	got := []int64{}
	for _, s := range r.Samples {
		got = append(got, int64(s.Offset/time.Microsecond), s.RmemAlloc)
	}
	want := []int64{10, ts, 20, 2 * ts, 25, 0, 30, ts, 40, 0}
	if len(got) != len(want) {
		t.Fatalf("samples %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("samples %v, want %v", got, want)
		}
	}
}

// An event without the extension makes the trace unusable.
func TestQueueTraceLacking(t *testing.T) {
	q := newQueueTrace(0)
	q.observe(&event{seq: 1, hasQueue: true, truesize: 768, rmemAlloc: 768}, 0, 1)
	q.observe(&event{seq: 2}, 0, 2)
	if q.exact() {
		t.Error("a trace with an event lacking the queue extension passed for exact")
	}
}

// envelope keeps each bucket's lowest and highest point.
func TestEnvelope(t *testing.T) {
	var pts []results.QueueSample
	for i := range 1000 {
		v := int64(i % 10 * 100)
		if i == 555 {
			v = 99999
		}
		pts = append(pts, results.QueueSample{Offset: time.Duration(i), RmemAlloc: v})
	}
	out := envelope(pts, 100)
	if len(out) > 100 {
		t.Fatalf("%d points, want at most 100", len(out))
	}
	var lo, hi int64 = 1, 0
	for i, p := range out {
		lo, hi = min(lo, p.RmemAlloc), max(hi, p.RmemAlloc)
		if i > 0 && p.Offset < out[i-1].Offset {
			t.Fatalf("out of order at %d", i)
		}
	}
	if lo != 0 || hi != 99999 {
		t.Errorf("envelope spans %d..%d, want 0..99999", lo, hi)
	}
}
