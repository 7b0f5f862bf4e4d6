package results

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// FieldError is a validation failure at a JSON field path such as
// "steps[3].samples[1].unicast_latency".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// at prefixes err's field path with field.
func at(field string, err error) error {
	if err == nil {
		return nil
	}
	if fe, ok := err.(*FieldError); ok {
		sep := "."
		if strings.HasPrefix(fe.Field, "[") {
			sep = ""
		}
		return &FieldError{field + sep + fe.Field, fe.Err}
	}
	return &FieldError{field, err}
}

func errorf(field, format string, args ...any) error {
	return &FieldError{field, fmt.Errorf(format, args...)}
}

// parseVersion splits "major.minor".
func parseVersion(v string) (major, minor int, err error) {
	a, b, ok := strings.Cut(v, ".")
	if ok {
		major, err = strconv.Atoi(a)
		if err == nil {
			minor, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || major < 0 || minor < 0 {
		return 0, 0, fmt.Errorf("%q is not a major.minor version", v)
	}
	return major, minor, nil
}

func checkVersion(v string) error {
	major, _, err := parseVersion(v)
	if err != nil {
		return at("schema_version", err)
	}
	if major > SchemaMajor {
		return errorf("schema_version", "%s is newer than this imp2-bench reads (%d.x); use a newer imp2-bench", v, SchemaMajor)
	}
	if major < SchemaMajor {
		return errorf("schema_version", "%s is an unknown old major version (this imp2-bench reads %d.x)", v, SchemaMajor)
	}
	return nil
}

// Validate checks the run for internal consistency.
func (r *Run) Validate() error {
	if err := checkVersion(r.SchemaVersion); err != nil {
		return err
	}
	if r.Environment.CPUs <= 0 {
		return errorf("environment.cpus", "%d, want > 0", r.Environment.CPUs)
	}
	switch r.Source.Kind {
	case SourceKmod, SourceNFLOG, SourceEmu, SourceBPF, SourceBPFTC:
	default:
		return errorf("source.kind", "%q, want %s, %s, %s, %s or %s", r.Source.Kind, SourceKmod, SourceNFLOG, SourceEmu, SourceBPF, SourceBPFTC)
	}
	if r.Source.Emulated != (r.Source.Kind == SourceEmu) {
		return errorf("source.emulated", "%v for kind %s: emulated must be true exactly for %s", r.Source.Emulated, r.Source.Kind, SourceEmu)
	}
	if err := at("parameters", r.Params.validate(r.Source.Kind)); err != nil {
		return err
	}
	if len(r.Steps) == 0 {
		return errorf("steps", "empty")
	}
	seen := map[StepKey]int{}
	for i := range r.Steps {
		s := &r.Steps[i]
		if j, dup := seen[s.Key()]; dup {
			return errorf(fmt.Sprintf("steps[%d]", i), "same parameters as steps[%d] (%s)", j, s.Key())
		}
		seen[s.Key()] = i
		if err := at(fmt.Sprintf("steps[%d]", i), s.validate(&r.Params)); err != nil {
			return err
		}
	}
	if err := r.validatePartial(); err != nil {
		return err
	}
	if o := r.Overhead; o != nil {
		if o.Without < 0 || o.With < 0 || o.Method == "" || o.Unit == "" {
			return errorf("consumer_overhead", "needs method, unit and non-negative with/without")
		}
		if o.Pairs < 0 || (o.Pairs > 0) != (o.Confidence > 0 && o.Confidence < 1) ||
			(o.DiffCI != nil && (o.Pairs == 0 || o.DiffCI[0] > o.Diff || o.Diff > o.DiffCI[1])) {
			return errorf("consumer_overhead", "pairs %d, confidence %v, diff %v in %v: want a confidence in (0,1) with pairs, and diff inside its interval",
				o.Pairs, o.Confidence, o.Diff, o.DiffCI)
		}
	}
	return nil
}

func (p *Params) validate(kind string) error {
	if len(p.RatesPPS) == 0 || slices.Min(p.RatesPPS) <= 0 {
		return errorf("rates_pps", "%v, want at least one rate > 0", p.RatesPPS)
	}
	if len(p.RcvBufs) == 0 || slices.Min(p.RcvBufs) <= 0 {
		return errorf("rcvbufs_bytes", "%v, want at least one size > 0", p.RcvBufs)
	}
	if len(p.ConsumerDelays) == 0 || slices.Min(p.ConsumerDelays) < 0 {
		return errorf("consumer_delays_ns", "%v, want at least one delay >= 0", p.ConsumerDelays)
	}
	if p.StepDuration <= 0 {
		return errorf("step_duration_ns", "%d, want > 0", p.StepDuration)
	}
	if p.Repetitions < 1 {
		return errorf("repetitions", "%d, want >= 1", p.Repetitions)
	}
	if p.NFLOGQThreshold < 0 || (kind != SourceNFLOG && p.NFLOGQThreshold != 0) {
		return errorf("nflog_qthresh", "%d for source %s (only nflog has one, >= 1)", p.NFLOGQThreshold, kind)
	}
	return nil
}

func (s *Step) validate(p *Params) error {
	if !slices.Contains(p.RatesPPS, s.RatePPS) {
		return errorf("rate_pps", "%d is not in parameters.rates_pps %v", s.RatePPS, p.RatesPPS)
	}
	if !slices.Contains(p.RcvBufs, s.RcvBuf) {
		return errorf("rcvbuf_bytes", "%d is not in parameters.rcvbufs_bytes %v", s.RcvBuf, p.RcvBufs)
	}
	if !slices.Contains(p.ConsumerDelays, s.ConsumerDelay) {
		return errorf("consumer_delay_ns", "%d is not in parameters.consumer_delays_ns %v", s.ConsumerDelay, p.ConsumerDelays)
	}
	if len(s.Samples) == 0 || len(s.Samples) > p.Repetitions {
		return errorf("samples", "%d samples, want 1 to parameters.repetitions (%d)", len(s.Samples), p.Repetitions)
	}
	reps := map[int]bool{}
	for i := range s.Samples {
		sm := &s.Samples[i]
		if sm.Rep < 0 || sm.Rep >= p.Repetitions || reps[sm.Rep] {
			return errorf(fmt.Sprintf("samples[%d].rep", i), "%d is out of range or repeated (repetitions %d)", sm.Rep, p.Repetitions)
		}
		reps[sm.Rep] = true
		if err := at(fmt.Sprintf("samples[%d]", i), sm.validate()); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sample) validate() error {
	if s.Duration <= 0 {
		return errorf("duration_ns", "%d, want > 0", s.Duration)
	}
	if !(s.OfferedPPS > 0) || math.IsInf(s.OfferedPPS, 0) {
		return errorf("offered_pps", "%v, want > 0", s.OfferedPPS)
	}
	if !(s.AchievedPPS >= 0) || math.IsInf(s.AchievedPPS, 0) {
		return errorf("achieved_pps", "%v, want >= 0", s.AchievedPPS)
	}
	if s.Sent < 0 || s.Received < 0 {
		return errorf("sent", "sent %d, received %d: counts cannot be negative", s.Sent, s.Received)
	}
	var want float64
	if s.Sent > 0 {
		want = float64(s.Received) / float64(s.Sent)
	}
	if math.Abs(s.DeliveryRatio-want) > 1e-9 {
		return errorf("delivery_ratio", "%v, but received/sent = %d/%d = %v", s.DeliveryRatio, s.Received, s.Sent, want)
	}
	if err := at("drops", s.Drops.validate()); err != nil {
		return err
	}
	if err := at("queue", s.Queue.validate()); err != nil {
		return err
	}
	// An exact trace sees every gap the sequence numbers show.
	if s.Queue.Method == QueueExact && s.Drops.SeqGaps != nil && s.Queue.GapEvents() != *s.Drops.SeqGaps {
		return errorf("queue.gaps", "hold %d events, but seq_gaps is %d", s.Queue.GapEvents(), *s.Drops.SeqGaps)
	}
	if s.BurstHeld != nil && *s.BurstHeld < 0 {
		return errorf("burst_held", "%d, want >= 0", *s.BurstHeld)
	}
	if s.Unicast != nil {
		if err := at("unicast_latency", s.Unicast.validate()); err != nil {
			return err
		}
	}
	if s.EndToEnd != nil {
		if err := at("e2e_latency", s.EndToEnd.validate()); err != nil {
			return err
		}
	}
	return nil
}

func (d *Drops) validate() error {
	for _, c := range []struct {
		name string
		v    *int64
	}{{"module_eagain", d.ModuleEAGAIN}, {"enobufs", d.ENOBUFS}, {"meminfo_drops", d.MeminfoDrops}, {"seq_gaps", d.SeqGaps}} {
		if c.v != nil && *c.v < 0 {
			return errorf(c.name, "%d, want >= 0", *c.v)
		}
	}
	agree, why := d.check()
	if d.Agree != agree || d.Disagreement != why {
		return errorf("agree", "recorded agree=%v %q, but the counts say agree=%v %q (call Drops.Reconcile)", d.Agree, d.Disagreement, agree, why)
	}
	return nil
}

func (q *Queue) validate() error {
	if q.RcvBuf < 0 || q.PeakBytes < 0 || q.TrueSize < 0 {
		return errorf("rcvbuf_bytes", "rcvbuf %d, peak %d, truesize %d: cannot be negative", q.RcvBuf, q.PeakBytes, q.TrueSize)
	}
	if q.Method != "" && q.Method != QueueExact && q.Method != QueueSampled {
		return errorf("method", "%q, want %q or %q", q.Method, QueueExact, QueueSampled)
	}
	if len(q.Gaps) > 0 && q.Method != QueueExact {
		return errorf("gaps", "%d gaps in a trace that is not exact", len(q.Gaps))
	}
	for i, g := range q.Gaps {
		if g.From < 0 || g.To < g.From || g.Events <= 0 || g.DropRmem < 0 {
			return errorf(fmt.Sprintf("gaps[%d]", i), "%+v: want 0 <= from <= to, events > 0, drop_rmem >= 0", g)
		}
	}
	for i, s := range q.Samples {
		if s.Offset < 0 || s.RmemAlloc < 0 || (i > 0 && s.Offset < q.Samples[i-1].Offset) {
			return errorf(fmt.Sprintf("samples[%d]", i), "[%d,%d]: offsets must be >= 0 and non-decreasing, bytes >= 0", s.Offset, s.RmemAlloc)
		}
		if s.RmemAlloc > q.PeakBytes {
			return errorf(fmt.Sprintf("samples[%d]", i), "rmem_alloc %d exceeds peak_rmem_alloc_bytes %d", s.RmemAlloc, q.PeakBytes)
		}
	}
	return nil
}

// validatePartial checks that the partial marker and the interruption come
// together and that the interruption's counts are those of Steps.
func (r *Run) validatePartial() error {
	in := r.Interruption
	if r.Partial != (in != nil) {
		return errorf("partial", "%v with interruption %v: a partial run needs an interruption, and only a partial run has one", r.Partial, in != nil)
	}
	if in == nil {
		return nil
	}
	if in.Signal == "" {
		return errorf("interruption.signal", "empty")
	}
	p := &r.Params
	planned := len(p.RatesPPS) * len(p.RcvBufs) * len(p.ConsumerDelays) * p.Repetitions
	if in.PlannedSamples != planned {
		return errorf("interruption.planned_samples", "%d, but the parameters make %d", in.PlannedSamples, planned)
	}
	have, full := 0, map[string]bool{}
	for i := range r.Steps {
		have += len(r.Steps[i].Samples)
		if len(r.Steps[i].Samples) == p.Repetitions {
			full[r.Steps[i].Key().String()] = true
		}
	}
	if in.CompletedSamples != have || have > planned {
		return errorf("interruption.completed_samples", "%d, but steps hold %d samples (of %d planned)", in.CompletedSamples, have, planned)
	}
	for i, k := range in.CompletedSteps {
		if !full[k] {
			return errorf(fmt.Sprintf("interruption.completed_steps[%d]", i), "%s is not a step with all %d repetitions", k, p.Repetitions)
		}
		delete(full, k)
	}
	if len(full) > 0 {
		return errorf("interruption.completed_steps", "misses %d step(s) that have all their repetitions", len(full))
	}
	if in.InterruptedRep < 0 || in.InterruptedRep >= p.Repetitions || (in.InterruptedStep == "" && in.InterruptedRep != 0) {
		return errorf("interruption.interrupted_rep", "%d with step %q (repetitions %d)", in.InterruptedRep, in.InterruptedStep, p.Repetitions)
	}
	return nil
}
