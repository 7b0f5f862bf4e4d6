package bench

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/imp2/imp2/internal/results"
)

// maxQueueEvents bounds the events a queue trace keeps (32 bytes each);
// later ones still count in its gaps.
const maxQueueEvents = 1 << 20

// queueTrace reconstructs a sample's receive queue exactly from the
// module's queue extension (kmod/imp2_uapi.h): every event says how many
// bytes were queued with it when it was queued, and the consumer knows
// when it read each one, so the queue is known at both edges of every
// event's stay. A drop is placed by the next event's sequence gap: between
// the events around it, at the occupancy the module saw when it refused
// the first.
type queueTrace struct {
	origin  int64 // CLOCK_MONOTONIC of offset 0
	events  []queuedEvent
	gaps    []results.QueueGap
	lastEnq int64 // enqueue time of the last event observed
	// lacking is set by an event without the extension (another source,
	// an older module): the trace is then not exact, and not used.
	lacking bool
}

// queuedEvent is one event's stay in the queue.
type queuedEvent struct {
	enqueue, dequeue int64 // CLOCK_MONOTONIC ns: the module's unicast, the consumer's read
	rmem, truesize   int64
}

func newQueueTrace(origin int64) *queueTrace {
	return &queueTrace{origin: origin, lastEnq: origin}
}

// observe takes an event read at now (CLOCK_MONOTONIC) after gap missing
// ones (imp2.SeqTracker.Observe).
func (q *queueTrace) observe(e *event, gap uint64, now int64) {
	if !e.hasQueue {
		q.lacking = true
		return
	}
	if gap > 0 {
		q.gaps = append(q.gaps, results.QueueGap{From: q.offset(q.lastEnq), To: q.offset(e.unicastNs),
			Events: int64(gap), DropRmem: e.dropRmem})
	}
	q.lastEnq = e.unicastNs
	if len(q.events) < maxQueueEvents {
		q.events = append(q.events, queuedEvent{e.unicastNs, now, e.rmemAlloc, e.truesize})
	}
}

func (q *queueTrace) offset(ns int64) time.Duration { return time.Duration(max(ns-q.origin, 0)) }

// exact reports whether the trace can stand for the queue: every event
// carried the extension.
func (q *queueTrace) exact() bool { return len(q.events) > 0 && !q.lacking }

// result is the exact queue: a point at every enqueue (the module's
// rmem_alloc) and one after every read batch (the truesize of the events
// queued by then and not yet read), at most maxQueuePoints of them.
func (q *queueTrace) result(rcvbuf int64) results.Queue {
	evs := q.events
	// prefix[i] is the truesize of events [0, i).
	prefix := make([]int64, len(evs)+1)
	for i, e := range evs {
		prefix[i+1] = prefix[i] + e.truesize
	}
	out := results.Queue{RcvBuf: rcvbuf, Method: results.QueueExact, Gaps: q.gaps}
	pts := make([]results.QueueSample, 0, 2*len(evs))
	for i, e := range evs {
		pts = append(pts, results.QueueSample{Offset: q.offset(e.enqueue), RmemAlloc: e.rmem})
		out.PeakBytes = max(out.PeakBytes, e.rmem)
		out.TrueSize = max(out.TrueSize, e.truesize)
		if i+1 < len(evs) && evs[i+1].dequeue == e.dequeue {
			continue // not the last of its read batch
		}
		// Events queued by the read and after e are still queued.
		queued := sort.Search(len(evs), func(j int) bool { return evs[j].enqueue > e.dequeue })
		left := max(prefix[max(queued, i+1)]-prefix[i+1], 0)
		pts = append(pts, results.QueueSample{Offset: q.offset(e.dequeue), RmemAlloc: left})
		out.PeakBytes = max(out.PeakBytes, left)
	}
	slices.SortStableFunc(pts, func(a, b results.QueueSample) int { return cmp.Compare(a.Offset, b.Offset) })
	out.Samples = envelope(pts, maxQueuePoints)
	return out
}

// envelope thins a trace longer than n points to the lowest and highest
// point of each of n/2 equal time buckets, in time order, so that neither
// an overflow nor a full drain disappears.
func envelope(pts []results.QueueSample, n int) []results.QueueSample {
	if len(pts) <= n {
		return pts
	}
	span := pts[len(pts)-1].Offset - pts[0].Offset + 1
	width := max(span/time.Duration(n/2), 1)
	out := make([]results.QueueSample, 0, n)
	for i := 0; i < len(pts); {
		b := (pts[i].Offset - pts[0].Offset) / width
		lo, hi := i, i
		for ; i < len(pts) && (pts[i].Offset-pts[0].Offset)/width == b; i++ {
			if pts[i].RmemAlloc < pts[lo].RmemAlloc {
				lo = i
			}
			if pts[i].RmemAlloc > pts[hi].RmemAlloc {
				hi = i
			}
		}
		out = append(out, pts[min(lo, hi)])
		if lo != hi {
			out = append(out, pts[max(lo, hi)])
		}
	}
	return out
}
