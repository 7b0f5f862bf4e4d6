package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imp2/imp2/internal/compare"
)

// GateCandidate is one build the gate compares with the base: the
// working tree's kmod/ and consumer, with a test-only per-event delay in
// the module when DelayNS > 0 (kmod/Makefile IMP2_TEST_DELAY_NS) and in
// the consumer when ConsumerDelayNS > 0 (build tag
// imp2_test_consumer_delay); calibration and tests only.
type GateCandidate struct {
	DelayNS, ConsumerDelayNS int
}

// GateCandidates is what a gate compares with the base: this checkout's
// build, then its test variants, one per module delay and one per
// consumer delay (ns per event).
func GateCandidates(delaysNS, consumerDelaysNS []int) []GateCandidate {
	cs := []GateCandidate{{}}
	for _, ns := range delaysNS {
		cs = append(cs, GateCandidate{DelayNS: ns})
	}
	for _, ns := range consumerDelaysNS {
		cs = append(cs, GateCandidate{ConsumerDelayNS: ns})
	}
	return cs
}

func (c GateCandidate) label() string {
	var variant []string
	if c.DelayNS > 0 {
		variant = append(variant, fmt.Sprintf("+%d ns/event", c.DelayNS))
	}
	if c.ConsumerDelayNS > 0 {
		variant = append(variant, fmt.Sprintf("consumer +%d ns/event", c.ConsumerDelayNS))
	}
	if len(variant) == 0 {
		return "working tree"
	}
	return "working tree " + strings.Join(variant, ", ") + " (test variant)"
}

// GateConsumerCommand is the imp2-bench command that runs GateConsumer
// (inside the VM only).
const GateConsumerCommand = "gate-consumer"

// GateConsumerProtocol names the version of the exchange between the
// harness and GateConsumer: what `imp2-bench gate-consumer -protocol`
// prints. The host asks the base's binary before booting, so that a base
// revision that predates it (or speaks another) is refused by name.
const GateConsumerProtocol = "imp2 gate consumer protocol 1"

// GateABOptions is an A/B gate run.
type GateABOptions struct {
	// Base is a git revision of the checkout (its kmod/ and its
	// imp2-bench, whose consumer drains the base's floods, are built in a
	// temporary folder) or a .ko file (drained by this checkout's
	// consumer); "" is the merge-base of HEAD with main.
	Base string
	// ModuleOnly compares the modules only: this checkout's consumer
	// drains the base's floods too (for a base revision that predates
	// GateConsumerProtocol).
	ModuleOnly bool
	// Candidates are compared with the base each, interleaved in the same
	// boot; the CI gate has one, the working tree.
	Candidates []GateCandidate
	// Reps is the number of samples of each module, Count the packets of
	// each sample's flood.
	Reps, Count int
	// Baseline is the directory of the committed exact counts
	// (ExactBaselineFile); "" compares none. Rebaseline replaces the
	// VM kernel's entry with this run's counts instead of comparing.
	Baseline   string
	Rebaseline bool
	// ICount is qemu's -icount for the boot (vm.Config.ICount); "" or
	// "none": without.
	ICount string
	// CPUs is the guest's vCPU count; 0 is DefaultGateCPUs.
	CPUs     int
	Rule     GateRule
	Progress io.Writer
	Hard     <-chan struct{}
}

// The calibrated gate's settings (README, gate section): 12 pairs of
// 3000-packet floods on one vCPU under -icount with a fixed shift, where
// guest time is executed instructions (1 ns each) and so does not move
// with the host's load, and idle time is skipped (sleep=off).
const (
	DefaultGateReps   = 12
	DefaultGateCount  = 3000
	DefaultGateCPUs   = 1
	DefaultGateICount = "shift=0,sleep=off"
)

func (o *GateABOptions) validate() error {
	switch {
	case len(o.Candidates) == 0:
		return optErr("Candidates", ": none to compare with the base")
	case o.Reps < MinGatePairs(o.Rule):
		return optErr("Reps", " %d: the rule at alpha %g needs at least %d pairs for a finite interval", o.Reps, o.Rule.Alpha, MinGatePairs(o.Rule))
	case o.Count < 100 || o.Count > 1_000_000:
		return optErr("Count", " %d: want 100 to 1000000 packets per sample", o.Count)
	case o.Rule.Alpha <= 0 || o.Rule.Alpha >= 0.5:
		return optErr("Rule.Alpha", " %g: want 0 < alpha < 0.5", o.Rule.Alpha)
	case o.Rule.MinChange < 0:
		return optErr("Rule.MinChange", " %g: want >= 0", o.Rule.MinChange)
	}
	for i, c := range o.Candidates {
		if c.DelayNS < 0 || c.DelayNS > 9_999_999 {
			// The field's flag: imp2-bench gate -test-delays.
			return optErr("Test-Delays", " %d (candidate %d): want 0 to 9999999 ns", c.DelayNS, i)
		}
		if c.ConsumerDelayNS < 0 || c.ConsumerDelayNS > 9_999_999 {
			return optErr("Test-Consumer-Delays", " %d (candidate %d): want 0 to 9999999 ns", c.ConsumerDelayNS, i)
		}
	}
	return nil
}

// MinGatePairs is the fewest pairs whose median ratio has a finite 1−alpha
// interval (sign-test order statistics): 2·0.5ⁿ < alpha.
func MinGatePairs(r GateRule) int {
	n := 1
	for p := 1.0; 2*p >= r.Alpha; n++ {
		p /= 2
		if 2*p < r.Alpha {
			return n
		}
	}
	return n
}

// GateABResult is what an A/B gate measured and decided. Decisions[i]
// judges Candidates[i] (Labels[i+1], Samples[i+1]) against the base
// (Labels[0], Samples[0]), its first decision deciding.
type GateABResult struct {
	Kernel    string
	Labels    []string
	Samples   [][]GateSample
	Decisions [][]GateDecision
	Exact     *ExactCheck
	Elapsed   time.Duration
}

// Failed says whether the gate fails: a candidate's deciding metric
// regressed or could not be decided, or an exact count differs.
func (r *GateABResult) Failed() bool {
	for _, ds := range r.Decisions {
		if len(ds) > 0 && (ds[0].Status == compare.Worse || ds[0].Status == compare.TooFew) {
			return true
		}
	}
	return r.Exact != nil && len(r.Exact.Diffs) > 0
}

// Report is the gate's verdict for people.
func (r *GateABResult) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gate on %s, %s against each candidate:\n", r.Kernel, r.Labels[0])
	for i, ds := range r.Decisions {
		fmt.Fprintf(&b, "%s:\n%s", r.Labels[i+1], describeDecisions(ds))
	}
	if r.Exact != nil {
		b.WriteString(r.Exact.String() + "\n")
	}
	return b.String()
}

// ExactBaselineFile holds the committed exact counts, per kernel release.
const ExactBaselineFile = "exact.json"

// ExactBaseline is ExactBaselineFile: burst-held per receive buffer
// (bytes, as a string key) per kernel release. Exact counts depend on the
// kernel (truesize), so each release has its own entry.
type ExactBaseline struct {
	Kernels map[string]map[string]int64 `json:"kernels"`
}

// ExactCheck is the exact counts of one run against the baseline: Added
// says the release had no entry (or Rebaseline replaced it), so this
// run's counts became it (the file was written: commit it); Diffs lists
// the counts that differ.
type ExactCheck struct {
	Release string
	File    string
	Added   bool
	Held    map[string]int64
	Diffs   []string
}

// ReadExactBaseline reads file; errors wrap compare.ErrUnusable.
func ReadExactBaseline(file string) (*ExactBaseline, error) {
	var b ExactBaseline
	if err := readJSON(file, &b); err != nil {
		return nil, fmt.Errorf("%w: exact-count baseline: %v", compare.ErrUnusable, err)
	}
	for rel, counts := range b.Kernels {
		if rel == "" || len(counts) == 0 {
			return nil, fmt.Errorf("%w: exact-count baseline %s: kernel %q has no counts", compare.ErrUnusable, file, rel)
		}
	}
	return &b, nil
}

func (c *ExactCheck) String() string {
	switch {
	case c.Added:
		return fmt.Sprintf("exact counts: new baseline for %s (burst-held %s) written to %s; commit it", c.Release, heldString(c.Held), c.File)
	case len(c.Diffs) > 0:
		return fmt.Sprintf("exact counts on %s: REGRESSION: %s (baseline %s)", c.Release, strings.Join(c.Diffs, "; "), c.File)
	}
	return fmt.Sprintf("exact counts on %s: same as the baseline (burst-held %s)", c.Release, heldString(c.Held))
}

func heldString(h map[string]int64) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { a, _ := strconv.Atoi(keys[i]); b, _ := strconv.Atoi(keys[j]); return a < b })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d at rcvbuf %s", h[k], k))
	}
	return strings.Join(parts, ", ")
}

// CheckExact compares held (measured on release) with file's entry for
// release; a release without one, or any with replace, gets held as its
// entry, written back. A missing file is an error: the baseline is
// committed.
func CheckExact(file, release string, held map[string]int64, replace bool) (*ExactCheck, error) {
	b, err := ReadExactBaseline(file)
	if err != nil {
		return nil, err
	}
	c := &ExactCheck{Release: release, File: file, Held: held}
	want, ok := b.Kernels[release]
	if !ok || replace {
		if b.Kernels == nil {
			b.Kernels = map[string]map[string]int64{}
		}
		b.Kernels[release] = held
		c.Added = true
		return c, writeJSON(filepath.Dir(file), filepath.Base(file), b)
	}
	for rb, n := range held {
		if w, ok := want[rb]; !ok {
			c.Diffs = append(c.Diffs, fmt.Sprintf("rcvbuf %s: not in the baseline's entry", rb))
		} else if w != n {
			c.Diffs = append(c.Diffs, fmt.Sprintf("burst-held at rcvbuf %s: %d, baseline %d", rb, n, w))
		}
	}
	for rb := range want {
		if _, ok := held[rb]; !ok {
			c.Diffs = append(c.Diffs, fmt.Sprintf("rcvbuf %s: in the baseline, not measured", rb))
		}
	}
	sort.Strings(c.Diffs)
	return c, nil
}

func jsonBytes(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// writeJSON writes v into dir/name (the directory made if needed).
func writeJSON(dir, name string, v any) error {
	b, err := jsonBytes(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644)
}

// readJSON reads file into v, naming the file in errors.
func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
