// Package results is the on-disk record of one imp2-bench run (results.json):
// a versioned schema, its validation, and a benchstat-format export.
//
// The schema is the contract between the load path that measures, the plots
// that draw and the comparison that gates CI, so it is validated on both read
// and write, and every error names the file and the field.
package results

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SchemaVersion is "major.minor". A reader accepts any minor of its own major
// (minor versions only add fields, which older readers ignore) and refuses
// other majors. 1.1 added partial and interruption, 1.2 environment.build.
const SchemaVersion = "1.2"

// SchemaMajor is the major version this package reads and writes.
const SchemaMajor = 1

// Run is one bench run: a sweep of steps, each repeated.
type Run struct {
	SchemaVersion string      `json:"schema_version"`
	ToolVersion   string      `json:"tool_version"`
	Started       time.Time   `json:"started"`
	Environment   Environment `json:"environment"`
	Source        Source      `json:"source"`
	Params        Params      `json:"parameters"`
	Steps         []Step      `json:"steps"`
	// Overhead is the cost of measuring, reported so a reader can tell the
	// measurement did not distort the result; nil when not measured.
	Overhead *Overhead `json:"consumer_overhead,omitempty"`
	// Partial marks a run stopped by SIGINT or SIGTERM before its sweep
	// ended: Steps holds only the samples that completed (a step appears
	// once it has one), and Interruption says what is missing. Its figures
	// are worth reading, not gating on: compare refuses a partial run.
	Partial      bool          `json:"partial,omitempty"`
	Interruption *Interruption `json:"interruption,omitempty"`
}

// Interruption describes where a partial run stopped.
type Interruption struct {
	Signal string `json:"signal"` // "SIGINT" or "SIGTERM"
	// CompletedSamples of PlannedSamples (every step times the
	// repetitions) are in Steps.
	PlannedSamples   int `json:"planned_samples"`
	CompletedSamples int `json:"completed_samples"`
	// CompletedSteps are the steps (StepKey.String) that have all their
	// repetitions.
	CompletedSteps []string `json:"completed_steps"`
	// InterruptedStep and InterruptedRep name the sample that was running
	// and was dropped: a sample is kept whole or not at all. Empty when the
	// signal came between samples or while the consumer overhead was being
	// measured (Overhead is then nil).
	InterruptedStep string `json:"interrupted_step,omitempty"`
	InterruptedRep  int    `json:"interrupted_rep,omitempty"`
}

// Describe is one line about what a partial run holds, for summaries and
// figure titles; "" for a complete run.
func (r *Run) Describe() string {
	in := r.Interruption
	if !r.Partial || in == nil {
		return ""
	}
	s := fmt.Sprintf("PARTIAL: stopped by %s after %d of %d samples, %d of %d steps complete",
		in.Signal, in.CompletedSamples, in.PlannedSamples, len(in.CompletedSteps), in.PlannedSamples/max(r.Params.Repetitions, 1))
	if in.InterruptedStep != "" {
		s += fmt.Sprintf("; the sample in progress (%s rep %d) was dropped", in.InterruptedStep, in.InterruptedRep+1)
	}
	return s
}

// MarkPartial turns r into the partial run of an interrupted sweep: it
// drops the steps that have no sample yet and fills Interruption from what
// is left. running is the step whose sample rep was in progress, nil when
// the signal came outside a sample.
func (r *Run) MarkPartial(signal string, running *StepKey, rep int) {
	planned := len(r.Params.RatesPPS) * len(r.Params.RcvBufs) * len(r.Params.ConsumerDelays) * r.Params.Repetitions
	in := &Interruption{Signal: signal, PlannedSamples: planned, CompletedSteps: []string{}}
	kept := r.Steps[:0]
	for _, st := range r.Steps {
		if len(st.Samples) == 0 {
			continue
		}
		in.CompletedSamples += len(st.Samples)
		if len(st.Samples) == r.Params.Repetitions {
			in.CompletedSteps = append(in.CompletedSteps, st.Key().String())
		}
		kept = append(kept, st)
	}
	r.Steps = kept
	if running != nil {
		in.InterruptedStep, in.InterruptedRep = running.String(), rep
	}
	r.Partial, r.Interruption = true, in
}

// Environment says where the numbers come from; absolute times only compare
// within one environment.
type Environment struct {
	KernelRelease string `json:"kernel_release"`
	Machine       string `json:"machine"`
	CPUs          int    `json:"cpus"`
	GoVersion     string `json:"go_version"`
	// InVM is true when the sweep ran inside the qemu harness (software
	// emulation: behaviour is real, timings are not hardware timings).
	InVM     bool   `json:"in_vm"`
	Hostname string `json:"hostname"`
	// Build is the measuring tool's build as its -version says it
	// (internal/cli.Version: module version, VCS revision, "dirty"); ""
	// in runs written before schema 1.2.
	Build string `json:"build,omitempty"`
}

// Source kinds.
const (
	SourceKmod  = "kmod"  // the imp2 kernel module
	SourceNFLOG = "nflog" // the kernel's NFLOG hook→netlink path, as a peer
	SourceEmu   = "emu"   // user-space imp2 stand-in over NETLINK_USERSOCK
	SourceBPF   = "bpf"   // imp2's hook as a netfilter BPF program, events in a BPF ring buffer
	// SourceBPFTC is SourceBPF's program at tc ingress, for kernels
	// without netfilter BPF links: another hook point, before the IP layer.
	SourceBPFTC = "bpf-tc"
)

// Source is what produced the netlink events.
type Source struct {
	Kind string `json:"kind"`
	// Emulated is true exactly for SourceEmu: a user-space sender gets EAGAIN
	// itself, so overrun, ENOBUFS and socket drop counts are not the kernel's.
	Emulated bool   `json:"emulated"`
	Detail   string `json:"detail,omitempty"`
}

// Params is the sweep as requested; Steps holds what ran.
type Params struct {
	RatesPPS       []int           `json:"rates_pps"`
	RcvBufs        []int           `json:"rcvbufs_bytes"`
	ConsumerDelays []time.Duration `json:"consumer_delays_ns"`
	StepDuration   time.Duration   `json:"step_duration_ns"`
	Repetitions    int             `json:"repetitions"`
	NoENOBUFS      bool            `json:"no_enobufs"`
	// NFLOGQThreshold is nfnetlink_log's queue threshold (packets per netlink
	// message); 1 makes NFLOG send one message per event like imp2. Zero when
	// the source is not nflog.
	NFLOGQThreshold int `json:"nflog_qthresh,omitempty"`
}

// Step is one point of the sweep.
type Step struct {
	RatePPS       int           `json:"rate_pps"`
	RcvBuf        int           `json:"rcvbuf_bytes"`
	ConsumerDelay time.Duration `json:"consumer_delay_ns"`
	Samples       []Sample      `json:"samples"`
}

// StepKey identifies a step across runs.
type StepKey struct {
	RatePPS       int
	RcvBuf        int
	ConsumerDelay time.Duration
}

// Key returns the parameters that identify s.
func (s *Step) Key() StepKey {
	return StepKey{s.RatePPS, s.RcvBuf, s.ConsumerDelay}
}

// String is the benchstat sub-benchmark form, e.g.
// "rate=10000/rcvbuf=212992/delay=0".
func (k StepKey) String() string {
	return fmt.Sprintf("rate=%d/rcvbuf=%d/delay=%s", k.RatePPS, k.RcvBuf, FormatDelay(k.ConsumerDelay))
}

// FormatDelay writes a delay as "0" or a Go duration in ASCII ("20us"), so
// names stay easy to type in benchstat filters.
func FormatDelay(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return strings.ReplaceAll(d.String(), "µ", "u")
}

// Sample is one repetition of a step.
type Sample struct {
	Rep      int           `json:"rep"`
	Duration time.Duration `json:"duration_ns"`
	// OfferedPPS is the pacer's schedule (packets scheduled per second);
	// AchievedPPS what the generator actually sent.
	OfferedPPS  float64 `json:"offered_pps"`
	AchievedPPS float64 `json:"achieved_pps"`
	Sent        int64   `json:"sent"`
	Received    int64   `json:"received"`
	// DeliveryRatio is Received/Sent: it also counts packets lost before the
	// hook, unlike DropRatio.
	DeliveryRatio float64 `json:"delivery_ratio"`
	Drops         Drops   `json:"drops"`
	Queue         Queue   `json:"queue"`
	// BurstHeld is how many events the receive queue accepted in a burst
	// with no reads before the first drop: the kernel makes it
	// rcvbuf/truesize, so it is compared exactly. Nil when not probed.
	BurstHeld *int64 `json:"burst_held,omitempty"`
	// Unicast is kernel timestamp in the event → consumer receive;
	// EndToEnd is scheduled send time → consumer receive (free of
	// coordinated omission). Nil when the source cannot provide it.
	Unicast  *Latency `json:"unicast_latency,omitempty"`
	EndToEnd *Latency `json:"e2e_latency,omitempty"`
}

// Dropped is the largest count any accounting reports: at least this many
// events were lost between the hook and the consumer.
func (s *Sample) Dropped() int64 {
	var n int64
	for _, c := range []*int64{s.Drops.ModuleEAGAIN, s.Drops.MeminfoDrops, s.Drops.SeqGaps} {
		if c != nil && *c > n {
			n = *c
		}
	}
	return n
}

// DropRatio is Dropped/(Received+Dropped), 0 when nothing happened.
func (s *Sample) DropRatio() float64 {
	d := s.Dropped()
	if d+s.Received == 0 {
		return 0
	}
	return float64(d) / float64(d+s.Received)
}

// Drops holds each accounting of lost events. A nil count means the source
// has no such accounting (nflog has no module EAGAIN counter; emu has no
// kernel drops; ENOBUFS is off with NETLINK_NO_ENOBUFS).
type Drops struct {
	ModuleEAGAIN *int64 `json:"module_eagain,omitempty"`
	// ENOBUFS counts notifications, not events: one stands for a whole
	// congestion episode, so it only has to be non-zero when drops are.
	ENOBUFS      *int64 `json:"enobufs,omitempty"`
	MeminfoDrops *int64 `json:"meminfo_drops,omitempty"`
	SeqGaps      *int64 `json:"seq_gaps,omitempty"`
	Agree        bool   `json:"agree"`
	// Disagreement says how they differ when Agree is false.
	Disagreement string `json:"disagreement,omitempty"`
}

// Reconcile sets Agree and Disagreement from the counts: the event counts
// must be equal, and ENOBUFS must be non-zero exactly when they are.
func (d *Drops) Reconcile() {
	d.Agree, d.Disagreement = d.check()
}

func (d *Drops) check() (bool, string) {
	type count struct {
		name string
		v    *int64
	}
	var have []count
	for _, c := range []count{{"module_eagain", d.ModuleEAGAIN}, {"meminfo_drops", d.MeminfoDrops}, {"seq_gaps", d.SeqGaps}} {
		if c.v != nil {
			have = append(have, c)
		}
	}
	var diffs []string
	for _, c := range have[min(1, len(have)):] {
		if *c.v != *have[0].v {
			diffs = append(diffs, fmt.Sprintf("%s=%d", c.name, *c.v))
		}
	}
	if len(diffs) > 0 {
		return false, fmt.Sprintf("%s=%d but %s", have[0].name, *have[0].v, strings.Join(diffs, ", "))
	}
	if d.ENOBUFS != nil && len(have) > 0 && (*d.ENOBUFS > 0) != (*have[0].v > 0) {
		return false, fmt.Sprintf("enobufs=%d but %s=%d", *d.ENOBUFS, have[0].name, *have[0].v)
	}
	return true, ""
}

// Queue is the socket's receive-queue occupancy during the sample.
type Queue struct {
	// RcvBuf is the effective SO_RCVBUF (the kernel doubles the request).
	RcvBuf    int64 `json:"rcvbuf_bytes"`
	PeakBytes int64 `json:"peak_rmem_alloc_bytes"`
	// Method is how Samples were taken: QueueExact or QueueSampled (empty
	// in files written before there was a choice: sampled).
	Method  string        `json:"method,omitempty"`
	Samples []QueueSample `json:"samples"`
	// TrueSize is one event's skb truesize, as the module reported it
	// (exact method only).
	TrueSize int64 `json:"truesize_bytes,omitempty"`
	// Gaps places the lost events in time (exact method only): one per gap
	// in the sequence numbers, between the events around it.
	Gaps []QueueGap `json:"gaps,omitempty"`
}

// The queue methods. An exact trace has a point at every event's enqueue
// (the module's sk_rmem_alloc with the event) and at every read batch of
// the consumer (the events still queued, from their enqueue times); the
// sampled one reads SO_MEMINFO, which misses the moments between readings.
const (
	QueueExact   = "exact, per event (sk_rmem_alloc at enqueue)"
	QueueSampled = "sampled every 1 ms (SO_MEMINFO)"
)

// QueueGap is one gap in a consumer's sequence numbers: Events lost after
// the event queued at From and before the one queued at To (offsets as in
// QueueSample). DropRmem is sk_rmem_alloc when the first of them was
// refused, as the event at To reports it.
type QueueGap struct {
	From     time.Duration `json:"from_ns"`
	To       time.Duration `json:"to_ns"`
	Events   int64         `json:"events"`
	DropRmem int64         `json:"drop_rmem_bytes"`
}

// DropsAtLimit checks the exact trace against the kernel's admission rule
// (kmod/imp2_uapi.h): an event is refused for a full queue when
// sk_rmem_alloc with it would exceed sk_rcvbuf (kernels since 2025) or
// sk_rmem_alloc without it already does (older ones), so every gap must
// open at an occupancy within one truesize of the limit, RcvBuf-TrueSize <
// DropRmem <= RcvBuf+TrueSize, and no queued event may be above
// RcvBuf+TrueSize. It returns nil for a trace that is not exact.
func (q *Queue) DropsAtLimit() error {
	if q.Method != QueueExact {
		return nil
	}
	lo, hi := q.RcvBuf-q.TrueSize, q.RcvBuf+q.TrueSize
	for i, g := range q.Gaps {
		if g.DropRmem <= lo || g.DropRmem > hi {
			return fmt.Errorf("gap %d (%d events at %v): first refusal at %d bytes, not within one truesize (%d) of rcvbuf %d",
				i, g.Events, g.From, g.DropRmem, q.TrueSize, q.RcvBuf)
		}
	}
	if q.PeakBytes > hi {
		return fmt.Errorf("peak %d bytes above rcvbuf %d + truesize %d", q.PeakBytes, q.RcvBuf, q.TrueSize)
	}
	return nil
}

// GapEvents is the number of events the gaps hold.
func (q *Queue) GapEvents() int64 {
	var n int64
	for _, g := range q.Gaps {
		n += g.Events
	}
	return n
}

// QueueSample is one point of the queue trace: a reading of SO_MEMINFO
// rmem_alloc, or an exact point (Queue.Method). In JSON it is a pair
// [offset_ns, bytes], since there are thousands per sample.
type QueueSample struct {
	Offset    time.Duration
	RmemAlloc int64
}

// MarshalJSON writes [offset_ns, bytes].
func (q QueueSample) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "[%d,%d]", int64(q.Offset), q.RmemAlloc), nil
}

// UnmarshalJSON reads [offset_ns, bytes].
func (q *QueueSample) UnmarshalJSON(b []byte) error {
	var pair []int64
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("queue sample %s: want [offset_ns,bytes]", b)
	}
	q.Offset, q.RmemAlloc = time.Duration(pair[0]), pair[1]
	return nil
}

// Overhead is the consumer's own measuring cost: the same workload measured
// With and Without latency recording, in Unit (for example "ns/event").
// With and Without are medians; the cost itself is Diff, the median of
// Pairs interleaved (without, with) differences, with its confidence
// interval: a difference whose interval holds 0 is not one.
type Overhead struct {
	Method  string  `json:"method"`
	Without float64 `json:"without"`
	With    float64 `json:"with"`
	Unit    string  `json:"unit"`
	Pairs   int     `json:"pairs,omitempty"`
	Diff    float64 `json:"diff,omitempty"`
	// DiffCI is the distribution-free interval of Diff at Confidence
	// (benchmath), nil when too few pairs give a finite one.
	DiffCI     *[2]float64 `json:"diff_ci,omitempty"`
	Confidence float64     `json:"confidence,omitempty"`
}

// Fraction is (With-Without)/Without, e.g. 0.04 for 4% overhead.
func (o *Overhead) Fraction() float64 {
	if o.Without == 0 {
		return 0
	}
	return (o.With - o.Without) / o.Without
}

// Distinguishable reports whether the overhead is told apart from zero:
// its confidence interval exists and leaves 0 out.
func (o *Overhead) Distinguishable() bool {
	return o.DiffCI != nil && (o.DiffCI[0] > 0 || o.DiffCI[1] < 0)
}

// String says what the overhead is and whether it is one, for example
// "+310 ns/event (+4.1%), 95% CI +120 .. +480, 10 interleaved pairs" or
// "... : not distinguishable from zero".
func (o *Overhead) String() string {
	if o.Pairs == 0 { // a file from before the pairs
		return fmt.Sprintf("%.0f -> %.0f %s (%+.1f%%, no confidence interval: not distinguishable from zero)",
			o.Without, o.With, o.Unit, 100*o.Fraction())
	}
	pct := 0.0
	if o.Without != 0 {
		pct = 100 * o.Diff / o.Without
	}
	s := fmt.Sprintf("%+.0f %s (%+.1f%%; medians %.0f -> %.0f), ", o.Diff, o.Unit, pct, o.Without, o.With)
	if o.DiffCI == nil {
		s += fmt.Sprintf("%d interleaved pairs, too few for a %.0f%% confidence interval", o.Pairs, 100*o.Confidence)
	} else {
		s += fmt.Sprintf("%.0f%% CI %+.0f .. %+.0f, %d interleaved pairs", 100*o.Confidence, o.DiffCI[0], o.DiffCI[1], o.Pairs)
	}
	if !o.Distinguishable() {
		s += ": not distinguishable from zero"
	}
	return s
}
