package record

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// finish ends the conversation: the peer's counters, SO_MEMINFO, and
// IMP2_CLOSE. Frames read meanwhile are late: written unless Count was
// reached.
func (r *Recorder) finish(ctx context.Context) {
	if reason := r.stopReason(); reason != StopCount && reason != StopWriteError {
		r.drainQueued()
	}
	r.end = time.Now()
	// From here on a read only returns what is already queued in Conn.
	r.conn.SetReadDeadline(time.Unix(deadlinePast, 0))
	if r.opts.StatsTimeout > 0 {
		r.fetchStats(ctx)
	}
	r.memInfo, r.memErr = r.conn.MemInfo()
	r.conn.Close() // IMP2_CLOSE reaches the trace through onControl
}

// drainQueued records what was queued on the socket when the recording
// stopped: it reads until a batch comes back short (the queue was empty at
// that moment), nothing comes for drainIdle, or drainMax has passed (a
// producer faster than the recorder never lets the queue empty).
func (r *Recorder) drainQueued() {
	limit := time.Now().Add(drainMax)
	for time.Now().Before(limit) {
		// Under mu: Stop sets its deadline under mu too, so it cannot
		// land after this one.
		r.mu.Lock()
		r.conn.SetReadDeadline(time.Now().Add(drainIdle))
		r.mu.Unlock()
		n, err := r.conn.ReadBatch(r.msgs)
		if errors.Is(err, imp2.ErrOverrun) {
			r.overrun()
			continue
		}
		if err != nil {
			return
		}
		r.received.Add(uint64(n))
		r.write(batch{msgs: r.msgs[:n], keep: n, t: time.Now().UnixNano(), dir: pcapnl.ToUser})
		if n < len(r.msgs) {
			return
		}
	}
}

// fetchStats asks the peer for its counters. A reply can be lost when
// the queue overflowed just before it (the kernel drops it like any
// event), so it asks up to maxStatsTries times within StatsTimeout.
func (r *Recorder) fetchStats(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.StatsTimeout)
	defer cancel()
	for range maxStatsTries {
		// No ReadBatch is running, so Stats reads the socket itself and
		// keeps the frames it meets for the next ReadBatch.
		try, cancelTry := context.WithTimeout(ctx, r.opts.StatsTimeout/maxStatsTries)
		st, err := r.conn.Stats(try)
		cancelTry()
		r.drainLate()
		r.writeHeld() // the reply, after the frames that came before it
		if err == nil {
			r.peerStats, r.statsErr = &st, nil
			return
		}
		r.statsErr = err
		if ctx.Err() != nil {
			return
		}
	}
}

// drainLate passes on the frames Stats read while waiting for its reply.
func (r *Recorder) drainLate() {
	for {
		n, err := r.conn.ReadBatch(r.msgs)
		if errors.Is(err, imp2.ErrOverrun) {
			// Met while Stats waited; the frames after it are still to come.
			r.overrun()
			continue
		}
		if err != nil || n == 0 {
			return
		}
		b := batch{msgs: r.msgs[:n], keep: n, t: time.Now().UnixNano(), dir: pcapnl.ToUser, late: true}
		if r.stopReason() == StopCount {
			b.keep = 0
		}
		r.write(b)
	}
}

// close closes the trace's last file and completes the summary; the
// error says the outcome.
func (r *Recorder) close() (*Summary, error) {
	s := r.summarize()
	tf := r.files
	var errs []error
	writeErr := r.tw.err
	if err := tf.finish(s.Drops.Lost); writeErr == nil {
		writeErr = err
	}
	if writeErr != nil {
		errs = append(errs, outputError(&r.opts, writeErr, true))
	}
	q := tf.queue
	s.Writer = Writer{BufferBytes: q.Bytes, MaxQueuedBytes: q.MaxQueued, Stalls: q.Waits,
		StallSeconds: q.WaitTime.Seconds(), FellBehind: q.Waits > 0}
	s.setWritten(tf.framesOut(), &r.tw.acct)
	if r.recvErr != nil {
		errs = append(errs, fmt.Errorf("receiving: %w", r.recvErr))
	}
	s.FileBytes = tf.total.Load()
	s.Files = tf.files
	if tf.gone.Files > 0 {
		s.Removed = &tf.gone
	}
	switch {
	case len(errs) > 0:
		err := &MidwayError{errs}
		s.Error = err.Error()
		return s, err
	case s.Drops.Lost > 0 || s.Drops.Unexplained > 0:
		return s, &LossError{s.Drops.Lost, s.Drops.Unexplained}
	}
	return s, nil
}
