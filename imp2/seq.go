package imp2

// SeqTracker follows one consumer's stream of nlmsg_seq numbers and counts
// the events missing from it.
//
// The module numbers each consumer's events 1, 2, 3, … from its
// registration, in u32 arithmetic, and queues them in that order under one
// lock (kmod/imp2.c, tx_lock): a consumer's queue is never reordered, so a
// number that skips ahead is always that many events dropped, and a number
// that does not move forward is a new stream (the producer restarted, or a
// trace was looped), never a late event. Differences are taken modulo 2^32
// (RFC 1982 serial arithmetic), so the stream may wrap. Sequence number 0
// marks an unnumbered event (the legacy module and some producers send
// none); it is counted and otherwise ignored.
//
// The zero value follows a stream whose first event may carry any number:
// a replayed or relayed stream starts where its source was. Set FromOne
// when the stream is known to start at 1 (a registration with the module):
// then a first event numbered n > 1 reveals n−1 events lost before it.
// A SeqTracker is not safe for concurrent use.
type SeqTracker struct {
	// FromOne says the stream's first event is numbered 1.
	FromOne bool

	started    bool
	first      uint32
	last       uint32
	missing    uint64
	restarts   uint64
	unnumbered uint64
}

// Observe takes the next event's nlmsg_seq and returns the number of
// events missing right before it (0 for an unnumbered event, a restart or
// the first event of a stream without FromOne).
func (t *SeqTracker) Observe(seq uint32) uint64 {
	if seq == 0 {
		t.unnumbered++
		return 0
	}
	if !t.started {
		t.started, t.first, t.last = true, seq, seq
		if t.FromOne && seq > 1 {
			t.missing += uint64(seq - 1)
			return uint64(seq - 1)
		}
		return 0
	}
	d := int32(seq - t.last)
	t.last = seq
	switch {
	case d > 1:
		t.missing += uint64(d - 1)
		return uint64(d - 1)
	case d <= 0:
		t.restarts++
	}
	return 0
}

// ObserveLast takes the number of the last event the producer says it
// sent to this consumer (IMP2_STATS self_last_seq) and returns the events
// sent after the last one observed, which no later gap can reveal: the
// events lost at the tail of the stream. It changes nothing when the
// producer's number is not ahead.
func (t *SeqTracker) ObserveLast(seq uint32) uint64 {
	if seq == 0 {
		return 0
	}
	if !t.started {
		if !t.FromOne {
			return 0
		}
		t.started, t.first, t.last = true, seq, seq
		t.missing += uint64(seq)
		return uint64(seq)
	}
	d := int32(seq - t.last)
	if d <= 0 {
		return 0
	}
	t.last = seq
	t.missing += uint64(d)
	return uint64(d)
}

// Missing is the total of events found missing so far.
func (t *SeqTracker) Missing() uint64 { return t.missing }

// Restarts counts the numbers that did not move forward: new streams.
func (t *SeqTracker) Restarts() uint64 { return t.restarts }

// Unnumbered counts the events that carried nlmsg_seq 0.
func (t *SeqTracker) Unnumbered() uint64 { return t.unnumbered }

// Span returns the first and last number observed, and false before any
// numbered event.
func (t *SeqTracker) Span() (first, last uint32, ok bool) {
	return t.first, t.last, t.started
}
