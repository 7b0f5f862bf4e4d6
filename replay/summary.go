package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/pcapnl"
)

// Summary is what a replay reports at the end. Its JSON encoding is one
// object: these fields, with the output's Report's fields after
// TimingError.
type Summary struct {
	// Output names the output: its Name, what it wrote ("pcap" for a
	// pcapng output to a .pcap file).
	Output string `json:"output"`
	Timing string `json:"timing"`

	// FramesRead counts the complete frames decoded from the input, the
	// read-ahead included: a replay that Limit, Duration or an interrupt
	// stopped early read more than it replayed (the text summary says
	// so), and FramesFiltered and FramesSkipped count the read-ahead too.
	FramesRead     int64 `json:"frames_read"`
	FramesFiltered int64 `json:"frames_filtered"` // left out by the filter
	FramesSkipped  int64 `json:"frames_skipped"`  // user→kernel or unknown-direction frames a kernel-only output does not send
	FramesSent     int64 `json:"frames_sent"`     // sent (netlink: offered to the consumer set) or written
	// FramesDelivered is what reached the other side: the output's
	// Report.Delivered, or FramesSent for the file outputs.
	FramesDelivered uint64 `json:"frames_delivered"`
	// Loops counts the passes over the input, the last one perhaps cut
	// short (by Limit, a truncated input, ...) or writing nothing (a
	// filter that matched no frame).
	Loops int `json:"loops"`
	// readAhead: the replay stopped before the end of the input, which
	// had been read further.
	readAhead bool

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

	// Out is the output's part (nil for the file outputs).
	Out Report `json:"-"`

	// EAGAIN and SendErrors are the output's undelivered frames: refused
	// with EAGAIN, and every other one.
	EAGAIN     uint64 `json:"eagain"`
	SendErrors uint64 `json:"send_errors"`

	// Problems are what went wrong, in order; Error joins them. The text
	// summary leaves them out: the caller reports each where errors go
	// (imp2-replay: a line on stderr).
	Problems []string `json:"-"`
	Error    string   `json:"error,omitempty"`
	ExitCode int      `json:"exit_code"`
}

// MarshalJSON encodes the summary as one object, Out's fields spliced in,
// after "type": "summary" (the progress lines of Options.Progress say
// "progress": a reader of the stream of JSON lines tells them apart).
func (s *Summary) MarshalJSON() ([]byte, error) {
	type plain Summary // without this method
	b, err := json.Marshal(struct {
		Type string `json:"type"`
		*plain
	}{"summary", (*plain)(s)})
	if err != nil || s.Out == nil {
		return b, err
	}
	o, err := json.Marshal(s.Out)
	if err != nil {
		return nil, err
	}
	o = bytes.TrimSuffix(bytes.TrimPrefix(o, []byte("{")), []byte("}"))
	if len(o) == 0 {
		return b, nil
	}
	at := bytes.Index(b, []byte(`,"eagain":`))
	return slices.Concat(b[:at+1], o, b[at:]), nil
}

func (t timing) String() string {
	var s string
	switch {
	case t.TopSpeed:
		s = "topspeed"
	case t.PPS > 0:
		s = fmt.Sprintf("pps %g", t.PPS)
	default:
		s = fmt.Sprintf("recorded x%g", t.Speed)
	}
	if !t.wait && !t.TopSpeed {
		s += " (re-timed, not waited)"
	}
	return s
}

// summary builds the summary of a finished replay: the timing, the
// output's part, and the problems in order of their exit codes' weight.
func (r *replayer) summary(inputs []string, sendErr, closeErr error, stopped bool) *Summary {
	s := &Summary{Output: r.out.Name(), Out: r.out.Report()}
	r.summarize(s)
	s.FramesDelivered = uint64(s.FramesSent) // a file output's, until the output's report says
	s.readAhead = !r.drained && s.FramesRead > s.FramesSent
	code := ExitOK
	problem := func(msg string, c int) {
		s.Problems = append(s.Problems, msg)
		if code == ExitOK {
			code = c
		}
	}
	switch {
	case errors.Is(sendErr, context.Canceled) || errors.Is(closeErr, context.Canceled):
		// A write the interrupt unblocked (OutputFile), perhaps before
		// the stop flag was set: "interrupted" below.
		stopped = true
	case sendErr != nil:
		problem(sendErr.Error(), ExitError)
	case closeErr != nil:
		problem(fmt.Sprintf("output: %v", closeErr), ExitError)
	}
	// An input error is reported when the replay reached it: not when
	// Limit or Duration stopped it first (the reader had read ahead).
	if r.in.err != nil && r.drained {
		problem(inputError(inputs, r.in.err), ExitInput)
	}
	if s.Out != nil {
		s.EAGAIN, s.SendErrors = s.Out.Undelivered()
		s.FramesDelivered = s.Out.Delivered()
		if msg, c := s.Out.Problem(s.FramesSent); msg != "" {
			problem(msg, c)
		}
	}
	if stopped && code == ExitOK {
		problem("interrupted", ExitInterrupted)
	}
	s.Error, s.ExitCode = strings.Join(s.Problems, "; "), code
	return s
}

func inputError(names []string, err error) string {
	name := names[0]
	var ie *InputError
	if errors.As(err, &ie) {
		name, err = ie.Name, ie.Err
	}
	var pe *pcapnl.Error
	if errors.As(err, &pe) {
		what, kind := "malformed", pcapnl.ErrFormat
		if errors.Is(err, pcapnl.ErrTruncated) {
			what, kind = "truncated", pcapnl.ErrTruncated
		}
		// pe's own text names pcapnl, the offset and the kind again.
		detail := pe.Msg
		cause := strings.TrimPrefix(strings.TrimPrefix(pe.Err.Error(), kind.Error()), ": ")
		if cause = strings.TrimPrefix(cause, "pcapnl: "); cause != "" {
			detail += ": " + cause
		}
		return fmt.Sprintf("input %s is %s at %s (%s): replayed the %d complete frame(s) before it, then stopped",
			name, what, pe.Where(), detail, pe.Frames)
	}
	return fmt.Sprintf("input %s: %v", name, err)
}

// summarize fills the timing part of the summary from a finished replayer.
func (r *replayer) summarize(s *Summary) {
	s.Timing = r.t.String()
	s.FramesRead, s.FramesFiltered, s.FramesSkipped = r.in.read.Load(), r.in.filtered.Load(), r.in.skipped.Load()
	s.FramesSent, s.Loops = r.sentN.Load(), r.loopsRun
	n := s.FramesSent
	if n == 0 {
		return
	}
	paced := r.t.wait && !r.t.TopSpeed
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

// US formats nanoseconds as microseconds with one decimal.
func US(ns int64) string { return fmt.Sprintf("%.1fµs", float64(ns)/1e3) }

// Write prints the summary as text lines or one JSON object; the text
// leaves Problems to the caller.
func (s *Summary) Write(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b strings.Builder
	ahead := ""
	if s.readAhead {
		ahead = " with the read-ahead"
	}
	fmt.Fprintf(&b, "imp2-replay: %s, %s: %s (read %d%s, filtered %d, skipped %d not kernel→user) in %d loop(s)\n",
		s.Output, s.Timing, s.headline(), s.FramesRead, ahead, s.FramesFiltered, s.FramesSkipped, s.Loops)
	if s.FramesSent > 0 {
		fmt.Fprintf(&b, "  elapsed %v, rate %.1f frames/s", time.Duration(s.ElapsedNs), s.RateFPS)
		if s.TargetFPS > 0 {
			fmt.Fprintf(&b, " (scheduled %.1f)", s.TargetFPS)
		}
		b.WriteByte('\n')
	}
	if e := s.TimingError; e != nil && e.Count > 0 {
		fmt.Fprintf(&b, "  timing error (actual − scheduled send): p50 %s p90 %s p99 %s p99.9 %s max %s\n",
			US(e.P50), US(e.P90), US(e.P99), US(e.P999), US(e.Max))
		fmt.Fprintf(&b, "  duration: %v actual vs %v scheduled, error %s\n",
			time.Duration(s.ElapsedNs), time.Duration(s.ScheduledNs), US(s.DurationErrorNs))
	}
	if s.Out != nil {
		b.Write(s.Out.AppendText(nil))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Headliner is a Report that says itself what became of the frames sent,
// for an output whose Delivered is no delivery (icmp: packets the kernel
// took, which only -verify sees reach a consumer).
type Headliner interface {
	Headline(sent int64) string
}

// headline says what the replay delivered: a file output wrote its
// frames; the others were offered frames and say how many they delivered,
// which may be none.
func (s *Summary) headline() string {
	if s.Out == nil {
		return fmt.Sprintf("wrote %d frames", s.FramesSent)
	}
	if h, ok := s.Out.(Headliner); ok {
		return h.Headline(s.FramesSent)
	}
	return fmt.Sprintf("delivered %d, offered %d frames", s.FramesDelivered, s.FramesSent)
}

// Snapshotter is an Output whose frames sent and consumer counters can
// be read at one instant (netlink), for progress lines that agree.
type Snapshotter interface {
	Snapshot() (sent int64, consumers []imp2.ConsumerStats)
}

// progress prints a line every interval until done is closed: frames sent,
// the rate over the interval, the largest timing error in it and the
// per-consumer EAGAIN counts.
func progress(w io.Writer, asJSON bool, every time.Duration, r *replayer, out Output, done <-chan struct{}) {
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
			sent, stats := r.sentN.Load(), []imp2.ConsumerStats(nil)
			if sn, ok := out.(Snapshotter); ok {
				sent, stats = sn.Snapshot()
			} else {
				stats = out.Consumers()
			}
			rate := float64(sent-prev) / now.Sub(prevT).Seconds()
			prev, prevT = sent, now
			writeProgress(w, asJSON, now.Sub(start), sent, rate, r.errs.IntervalMax(), stats)
		}
	}
}

func writeProgress(w io.Writer, asJSON bool, elapsed time.Duration, sent int64, rate float64, maxErr int64, stats []imp2.ConsumerStats) {
	cs, eagain := consumerSummaries(stats)
	if asJSON {
		b, _ := json.Marshal(struct {
			Type      string            `json:"type"`
			Elapsed   float64           `json:"elapsed_s"`
			Sent      int64             `json:"frames_sent"`
			Rate      float64           `json:"rate_fps"`
			MaxErr    int64             `json:"max_timing_error_ns"`
			EAGAIN    uint64            `json:"eagain"`
			Consumers []ConsumerSummary `json:"consumers,omitempty"`
		}{"progress", elapsed.Seconds(), sent, rate, maxErr, eagain, cs})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "imp2-replay: %6.1fs sent %d, %.0f frames/s, max timing error %s, EAGAIN %d",
		elapsed.Seconds(), sent, rate, US(maxErr), eagain)
	for _, c := range cs {
		fmt.Fprintf(&b, " [port %d sent %d EAGAIN %d]", c.Port, c.Sent, c.EAGAIN)
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}
