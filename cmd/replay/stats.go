package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/pace"
)

// summary is what imp2-replay reports at the end (-json: one object).
type summary struct {
	Output string `json:"output"`
	Timing string `json:"timing"`

	FramesRead     int64 `json:"frames_read"`     // complete frames decoded from the input
	FramesFiltered int64 `json:"frames_filtered"` // left out by -filter
	FramesSkipped  int64 `json:"frames_skipped"`  // user→kernel or unknown-direction frames -to netlink does not send
	FramesSent     int64 `json:"frames_sent"`     // sent (netlink: offered to the consumer set) or written
	Loops          int   `json:"loops"`

	// ElapsedNs runs from the first send to the last (paced) or to the end
	// of the last send (top speed); ScheduledNs is the same span in the
	// schedule, and DurationErrorNs their difference (paced only).
	ElapsedNs       int64   `json:"elapsed_ns"`
	ScheduledNs     int64   `json:"scheduled_ns,omitempty"`
	DurationErrorNs int64   `json:"duration_error_ns,omitempty"`
	RateFPS         float64 `json:"rate_fps"`
	TargetFPS       float64 `json:"target_fps,omitempty"`
	// TimingError: actual − scheduled send time of every frame (paced).
	TimingError *pace.Summary `json:"timing_error,omitempty"`

	// Consumers lists the fixed -dest, the consumers registered at the
	// end and the last imp2.KeptDeparted to leave; Departed sums those
	// that left before them; Totals sums all of them.
	Consumers []consumerSummary `json:"consumers,omitempty"`
	Departed  *departedSummary  `json:"departed,omitempty"`
	Refused   *refusedSummary   `json:"refused,omitempty"`
	Totals    *sendCounts       `json:"totals,omitempty"`
	// EAGAIN is Totals.EAGAIN; SendErrors every other frame not delivered
	// (-to icmp: packets the packet socket refused).
	EAGAIN     uint64 `json:"eagain"`
	SendErrors uint64 `json:"send_errors"`

	ICMP *icmpSummary `json:"icmp,omitempty"`

	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exit_code"`
}

type consumerSummary struct {
	Port   uint32 `json:"port"`
	PID    uint32 `json:"pid,omitempty"` // of its registration
	UID    uint32 `json:"uid"`
	Fixed  bool   `json:"fixed,omitempty"`
	Active bool   `json:"active"`
	sendCounts
}

// sendCounts is imp2.SendCounts with the summary's names: what became of
// each frame offered to a consumer.
type sendCounts struct {
	Sent         uint64 `json:"sent"`
	EAGAIN       uint64 `json:"eagain"`
	ECONNREFUSED uint64 `json:"econnrefused"`
	ENOBUFS      uint64 `json:"enobufs"`
	EPERM        uint64 `json:"eperm"`
	Other        uint64 `json:"other_errors"`
}

type departedSummary struct {
	Consumers uint64 `json:"consumers"`
	sendCounts
}

type refusedSummary struct {
	EPERM  uint64 `json:"eperm"`  // without CAP_NET_ADMIN
	ENOSPC uint64 `json:"enospc"` // over -max-consumers
}

func countsOf(c imp2.SendCounts) sendCounts { return sendCounts(c) }

func consumerSummaries(cs []imp2.ConsumerStats) ([]consumerSummary, uint64) {
	var out []consumerSummary
	var eagain uint64
	for _, c := range cs {
		out = append(out, consumerSummary{Port: c.PortID, PID: c.PID, UID: c.UID, Fixed: c.Fixed, Active: c.Active,
			sendCounts: countsOf(c.SendCounts)})
		eagain += c.EAGAIN
	}
	return out, eagain
}

// netlinkSummary fills the consumer part of the summary of -to netlink.
func (s *summary) netlinkSummary(o *netlinkOut) {
	s.Consumers, _ = consumerSummaries(o.consumers())
	if s.Consumers == nil {
		s.Consumers = []consumerSummary{}
	}
	total := o.departed.SendCounts
	for _, c := range o.final {
		total.Add(c.SendCounts)
	}
	if o.departed.Consumers > 0 {
		s.Departed = &departedSummary{o.departed.Consumers, countsOf(o.departed.SendCounts)}
	}
	if o.refused != (imp2.RefusedStats{}) {
		s.Refused = &refusedSummary{o.refused.EPERM, o.refused.ENOSPC}
	}
	t := countsOf(total)
	s.Totals = &t
	s.EAGAIN, s.SendErrors = total.EAGAIN, total.Failed()-total.EAGAIN
}

// failures lists the error classes of c that are not zero, EAGAIN first.
func (c sendCounts) failures() string {
	var b strings.Builder
	for _, f := range []struct {
		name string
		n    uint64
	}{{"EAGAIN", c.EAGAIN}, {"ECONNREFUSED", c.ECONNREFUSED}, {"ENOBUFS", c.ENOBUFS}, {"EPERM", c.EPERM}, {"other errors", c.Other}} {
		if f.n > 0 {
			fmt.Fprintf(&b, ", %s %d", f.name, f.n)
		}
	}
	return b.String()
}

func (t timing) String() string {
	var s string
	switch {
	case t.topspeed:
		s = "topspeed"
	case t.pps > 0:
		s = fmt.Sprintf("pps %g", t.pps)
	default:
		s = fmt.Sprintf("recorded x%g", t.speed)
	}
	if !t.wait && !t.topspeed {
		s += " (re-timed, not waited)"
	}
	return s
}

// summarize fills the timing part of the summary from a finished replayer.
func (r *replayer) summarize(s *summary) {
	s.Timing = r.t.String()
	s.FramesRead, s.FramesFiltered, s.FramesSkipped = r.in.read.Load(), r.in.filtered.Load(), r.in.skipped.Load()
	s.FramesSent, s.Loops = r.sentN.Load(), r.loopsRun
	n := s.FramesSent
	if n == 0 {
		return
	}
	paced := r.t.wait && !r.t.topspeed
	if paced {
		s.ElapsedNs = r.lastSend - r.firstSend
		s.ScheduledNs = r.lastDL - r.firstDL
		s.DurationErrorNs = s.ElapsedNs - s.ScheduledNs
		if n > 1 && s.ElapsedNs > 0 {
			s.RateFPS = float64(n-1) / (float64(s.ElapsedNs) / 1e9)
		}
		if n > 1 && s.ScheduledNs > 0 {
			s.TargetFPS = float64(n-1) / (float64(s.ScheduledNs) / 1e9)
		}
		e := r.errs.Summary()
		s.TimingError = &e
	} else {
		s.ElapsedNs = r.lastEnd - r.firstSend
		if s.ElapsedNs > 0 {
			s.RateFPS = float64(n) / (float64(s.ElapsedNs) / 1e9)
		}
	}
}

func us(ns int64) string { return fmt.Sprintf("%.1fµs", float64(ns)/1e3) }

// write prints the summary as text or one JSON object.
func (s *summary) write(w io.Writer, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(s)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "imp2-replay: %s, %s: sent %d frames (read %d, filtered %d, skipped %d not kernel→user) in %d loop(s)\n",
		s.Output, s.Timing, s.FramesSent, s.FramesRead, s.FramesFiltered, s.FramesSkipped, s.Loops)
	if s.FramesSent > 0 {
		fmt.Fprintf(&b, "  elapsed %v, rate %.1f frames/s", time.Duration(s.ElapsedNs), s.RateFPS)
		if s.TargetFPS > 0 {
			fmt.Fprintf(&b, " (scheduled %.1f)", s.TargetFPS)
		}
		b.WriteByte('\n')
	}
	if e := s.TimingError; e != nil && e.Count > 0 {
		fmt.Fprintf(&b, "  timing error (actual − scheduled send): p50 %s p90 %s p99 %s p99.9 %s max %s\n",
			us(e.P50), us(e.P90), us(e.P99), us(e.P999), us(e.Max))
		fmt.Fprintf(&b, "  duration: %v actual vs %v scheduled, error %s\n",
			time.Duration(s.ElapsedNs), time.Duration(s.ScheduledNs), us(s.DurationErrorNs))
	}
	if t := s.Totals; t != nil {
		n := len(s.Consumers)
		if s.Departed != nil {
			n += int(s.Departed.Consumers)
		}
		fmt.Fprintf(&b, "  consumers: %d, delivered %d, EAGAIN %d, ECONNREFUSED %d, ENOBUFS %d, EPERM %d, other errors %d\n",
			n, t.Sent, t.EAGAIN, t.ECONNREFUSED, t.ENOBUFS, t.EPERM, t.Other)
		for _, c := range s.Consumers {
			state := "active"
			if !c.Active {
				state = "gone"
			}
			if c.Fixed {
				state += ", fixed"
			} else {
				state += fmt.Sprintf(", pid %d uid %d", c.PID, c.UID)
			}
			fmt.Fprintf(&b, "    port %d (%s): sent %d%s\n", c.Port, state, c.Sent, c.failures())
		}
		if d := s.Departed; d != nil {
			fmt.Fprintf(&b, "    %d more that left earlier: sent %d%s\n", d.Consumers, d.Sent, d.failures())
		}
	}
	if r := s.Refused; r != nil {
		fmt.Fprintf(&b, "  registrations refused: %d without CAP_NET_ADMIN (-allow-unprivileged admits them), %d over -max-consumers\n", r.EPERM, r.ENOSPC)
	}
	if s.ICMP != nil {
		b.WriteString(s.ICMP.text())
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "  error: %s\n", s.Error)
	}
	io.WriteString(w, b.String())
}

// progress prints a line every interval until done is closed: frames sent,
// the rate over the interval, the largest timing error in it and the
// per-consumer EAGAIN counts.
func progress(w io.Writer, asJSON bool, every time.Duration, r *replayer, out output, done <-chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	var prev int64
	prevT := start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			sent := r.sentN.Load()
			rate := float64(sent-prev) / now.Sub(prevT).Seconds()
			prev, prevT = sent, now
			cs, eagain := consumerSummaries(out.consumers())
			maxErr := r.errs.IntervalMax()
			if asJSON {
				b, _ := json.Marshal(struct {
					Elapsed   float64           `json:"elapsed_s"`
					Sent      int64             `json:"frames_sent"`
					Rate      float64           `json:"rate_fps"`
					MaxErr    int64             `json:"max_timing_error_ns"`
					EAGAIN    uint64            `json:"eagain"`
					Consumers []consumerSummary `json:"consumers,omitempty"`
				}{now.Sub(start).Seconds(), sent, rate, maxErr, eagain, cs})
				fmt.Fprintf(w, "%s\n", b)
				continue
			}
			var b strings.Builder
			fmt.Fprintf(&b, "imp2-replay: %6.1fs sent %d, %.0f frames/s, max timing error %s, EAGAIN %d",
				now.Sub(start).Seconds(), sent, rate, us(maxErr), eagain)
			for _, c := range cs {
				fmt.Fprintf(&b, " [port %d sent %d EAGAIN %d]", c.Port, c.Sent, c.EAGAIN)
			}
			b.WriteByte('\n')
			io.WriteString(w, b.String())
		}
	}
}

func (s *summary) verifyReport() *verifyReport {
	if s.ICMP == nil {
		return nil
	}
	return s.ICMP.Verify
}
