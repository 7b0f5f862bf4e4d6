// Package compare decides whether a bench run regressed against a baseline:
// for each metric and each sweep step both runs have, medians with
// confidence intervals and a Mann–Whitney U test from
// golang.org/x/perf/benchmath (benchstat's statistics, with no assumption
// of normality, which latency samples do not meet), then a verdict that
// needs both significance and a per-metric size threshold (see
// DefaultConfig). Unlike benchstat it ends in an exit status a CI job can
// use.
package compare

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"golang.org/x/perf/benchmath"

	"github.com/imp2/imp2/internal/results"
)

// Status is the outcome of one row.
type Status string

const (
	Same     Status = "same"        // not significant, or within the threshold
	Worse    Status = "regression"  // significant and beyond the threshold, in the worse direction
	Better   Status = "improvement" // significant and beyond the threshold, in the better direction
	TooFew   Status = "too-few-samples"
	Unstable Status = "unstable" // an exact metric varies within one run
)

// Summary is one side of a row. Lo and Hi bound the median's confidence
// interval; nil when the sample is too small for one.
type Summary struct {
	N      int      `json:"n"`
	Median float64  `json:"median"`
	Lo     *float64 `json:"lo,omitempty"`
	Hi     *float64 `json:"hi,omitempty"`
}

// Row is one metric at one step.
type Row struct {
	Step   string  `json:"step"`
	Metric string  `json:"metric"`
	Worse  string  `json:"worse"` // "higher" or "lower"
	Exact  bool    `json:"exact,omitempty"`
	Base   Summary `json:"base"`
	New    Summary `json:"new"`
	// Delta is new−base median; Change is Delta/|base|, nil when base is 0.
	Delta  float64  `json:"delta"`
	Change *float64 `json:"change,omitempty"`
	// P is the U test's p-value (nil for exact metrics and too few samples).
	P *float64 `json:"p,omitempty"`
	// Limit is the smallest change that counts, in the metric's unit.
	Limit  float64 `json:"limit"`
	Status Status  `json:"status"`
	Reason string  `json:"reason"`

	metric Metric
	alpha  float64
}

// Verdict is the comparison of two runs.
type Verdict struct {
	Base  string  `json:"base"`
	New   string  `json:"new"`
	Alpha float64 `json:"alpha"`
	// MinSamples is how many samples per side a statistical row needs.
	MinSamples int `json:"min_samples"`
	// CrossSource marks a comparison of two sources (imp2 against NFLOG,
	// say): a difference is between the paths, not a regression of one.
	CrossSource bool   `json:"cross_source"`
	BaseSource  string `json:"base_source"`
	NewSource   string `json:"new_source"`
	Rows        []Row  `json:"rows"`
	// Notes are differences worth knowing that do not stop the comparison:
	// other kernel or machine, steps or metrics on one side only.
	Notes []string `json:"notes,omitempty"`
}

// ErrUnusable marks input that cannot be compared at all.
var ErrUnusable = errors.New("unusable input")

// MinSamples is the fewest samples per side for which benchmath can both
// reject the null hypothesis at alpha and give a finite 1−alpha confidence
// interval for the median, found by asking benchmath itself. At alpha 0.05
// the U test alone could succeed with 4 per side (smallest p 2/70 = 0.029),
// but the 95% interval of a median needs 6 (2·0.5⁶ = 0.031 < 0.05): so 6,
// as benchstat says.
func MinSamples(alpha float64) int {
	th := &benchmath.Thresholds{CompareAlpha: alpha}
	for n := 2; ; n++ {
		lo, hi := make([]float64, n), make([]float64, n)
		for i := range n {
			lo[i], hi[i] = float64(i), float64(n+i)
		}
		a, b := benchmath.NewSample(lo, th), benchmath.NewSample(hi, th)
		s := benchmath.AssumeNothing.Summary(a, 1-alpha)
		if benchmath.AssumeNothing.Compare(a, b).P < alpha && !math.IsInf(s.Lo, 0) && !math.IsInf(s.Hi, 0) {
			return n
		}
	}
}

// Compare compares the runs new against base: CompareValues of their
// values.
func Compare(base, new *results.Run, baseName, newName string, cfg Config) (*Verdict, error) {
	return CompareValues(results.ValuesOf(base), results.ValuesOf(new), baseName, newName, cfg)
}

// ErrOtherSource marks two runs of different sources compared without
// cfg.CrossSource; such an error is also ErrUnusable.
var ErrOtherSource = errors.New("runs of different sources")

// sourceError is the error of ErrOtherSource.
type sourceError struct{ msg string }

func (e *sourceError) Error() string { return e.msg }

func (e *sourceError) Is(target error) bool { return target == ErrOtherSource || target == ErrUnusable }

// CompareValues compares new against base step by step. It fails with an
// error wrapping ErrUnusable when the runs cannot be compared at all (other
// source unless cfg.CrossSource, no step in common, bad config, a partial
// run); rows that cannot be decided are marked TooFew or Unstable instead.
func CompareValues(base, new *results.Values, baseName, newName string, cfg Config) (*Verdict, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnusable, err)
	}
	// A partial run's steps are whatever finished before the signal: a
	// verdict on them would pass or fail a sweep nobody ran.
	for _, r := range []struct {
		name string
		vs   *results.Values
	}{{baseName, base}, {newName, new}} {
		if r.vs.Partial != "" {
			return nil, fmt.Errorf("%w: %s is a partial run (%s); compare only complete sweeps", ErrUnusable, r.name, r.vs.Partial)
		}
	}
	v := &Verdict{Base: baseName, New: newName, Alpha: cfg.Alpha, MinSamples: MinSamples(cfg.Alpha),
		BaseSource: base.Source.Kind, NewSource: new.Source.Kind}
	if base.Source.Kind != new.Source.Kind {
		if !cfg.CrossSource {
			return nil, &sourceError{fmt.Sprintf("%v: %s comes from source %s and %s from source %s; compare runs of one source, or ask for a cross-source comparison",
				ErrUnusable, baseName, base.Source.Kind, newName, new.Source.Kind)}
		}
		v.CrossSource = true
	}
	v.Notes = envNotes(base, new)
	newSteps := map[results.StepKey]*results.StepValues{}
	for i := range new.Steps {
		newSteps[new.Steps[i].Key] = &new.Steps[i]
	}
	matched, oneSided := 0, oneSided{}
	for i := range base.Steps {
		bs := &base.Steps[i]
		ns, ok := newSteps[bs.Key]
		if !ok {
			v.Notes = append(v.Notes, fmt.Sprintf("step %s only in base", bs.Key))
			continue
		}
		delete(newSteps, bs.Key)
		matched++
		v.compareStep(bs, ns, cfg, oneSided)
	}
	v.Notes = append(v.Notes, oneSided.notes()...)
	for i := range new.Steps {
		if _, left := newSteps[new.Steps[i].Key]; left {
			v.Notes = append(v.Notes, fmt.Sprintf("step %s only in new", new.Steps[i].Key))
		}
	}
	if matched == 0 {
		return nil, fmt.Errorf("%w: %s and %s have no sweep step (rate, rcvbuf, delay) in common", ErrUnusable, baseName, newName)
	}
	return v, nil
}

// compareStep adds a row for each metric both steps measured, and counts
// in one those only one side measured.
func (v *Verdict) compareStep(bs, ns *results.StepValues, cfg Config, one oneSided) {
	for _, m := range Metrics {
		bv, nv := bs.Values(m.Name), ns.Values(m.Name)
		switch {
		case len(bv) == 0 && len(nv) == 0:
		case len(bv) == 0:
			one.add(m.Name, "new", bs.Key)
		case len(nv) == 0:
			one.add(m.Name, "base", bs.Key)
		default:
			v.Rows = append(v.Rows, compareRow(bs.Key.String(), m, bv, nv, cfg, v.MinSamples))
		}
	}
}

// oneSided is, per "metric only in side", the steps where it is: one note
// each, not one per step (a bench.txt from before burst-held was exported
// lacks it at every step).
type oneSided map[[2]string][]string

func (o oneSided) add(metric, side string, k results.StepKey) {
	o[[2]string{metric, side}] = append(o[[2]string{metric, side}], k.String())
}

func (o oneSided) notes() []string {
	var notes []string
	for _, m := range Metrics {
		for _, side := range []string{"base", "new"} {
			switch steps := o[[2]string{m.Name, side}]; len(steps) {
			case 0:
			case 1:
				notes = append(notes, fmt.Sprintf("%s at %s only in %s", m.Name, steps[0], side))
			default:
				notes = append(notes, fmt.Sprintf("%s only in %s, at %d steps (%s, …)", m.Name, side, len(steps), steps[0]))
			}
		}
	}
	return notes
}

// envNotes names what differs between the runs' environments and
// sweeps, where both sides know it.
func envNotes(base, new *results.Values) []string {
	var notes []string
	diff := func(what string, b, n any) {
		if b != n {
			notes = append(notes, fmt.Sprintf("%s differs: base %v, new %v", what, b, n))
		}
	}
	be, ne := base.Environment, new.Environment
	diff("kernel", be.KernelRelease, ne.KernelRelease)
	diff("machine", be.Machine, ne.Machine)
	diff("cpus", be.CPUs, ne.CPUs)
	diff("in_vm", be.InVM, ne.InVM)
	if base.NoENOBUFS != nil && new.NoENOBUFS != nil {
		diff("no_enobufs", *base.NoENOBUFS, *new.NoENOBUFS)
	}
	// Zero when the source is not nflog: a difference across sources says nothing.
	if base.NFLOGQThreshold != nil && new.NFLOGQThreshold != nil && base.Source.Kind == new.Source.Kind {
		diff("nflog_qthresh", *base.NFLOGQThreshold, *new.NFLOGQThreshold)
	}
	if base.StepDuration != nil && new.StepDuration != nil {
		diff("step duration", *base.StepDuration, *new.StepDuration)
	}
	return notes
}

func compareRow(step string, m Metric, bv, nv []float64, cfg Config, need int) Row {
	r := Row{Step: step, Metric: m.Name, Worse: "lower", Exact: m.Exact, metric: m, alpha: cfg.Alpha}
	if m.HigherIsWorse {
		r.Worse = "higher"
	}
	if m.Exact {
		return exactRow(r, bv, nv)
	}
	th := &benchmath.Thresholds{CompareAlpha: cfg.Alpha}
	bs, ns := benchmath.NewSample(bv, th), benchmath.NewSample(nv, th)
	r.Base, r.New = summary(bs, cfg.Alpha), summary(ns, cfg.Alpha)
	r.setDelta()
	r.Limit = cfg.Thresholds[m.Name].Limit(r.Base.Median)
	if len(bv) < need || len(nv) < need {
		r.Status = TooFew
		r.Reason = fmt.Sprintf("%d base and %d new samples", len(bv), len(nv)) // the need is said once, by ExitStatus
		return r
	}
	p := benchmath.AssumeNothing.Compare(bs, ns).P
	r.P = &p
	worse := (r.Delta > 0) == m.HigherIsWorse
	switch {
	case p >= cfg.Alpha:
		r.Status, r.Reason = Same, fmt.Sprintf("not significant (p=%.3f ≥ %v)", p, cfg.Alpha)
	case math.Abs(r.Delta) <= r.Limit:
		r.Status, r.Reason = Same, fmt.Sprintf("significant but within the threshold (%s ≤ %s)", r.deltaString(), m.Format(r.Limit))
	case *r.New.Lo <= *r.Base.Hi && *r.Base.Lo <= *r.New.Hi:
		r.Status, r.Reason = Same, fmt.Sprintf("%s, but the confidence intervals overlap", r.deltaString())
	case worse:
		r.Status, r.Reason = Worse, fmt.Sprintf("%s, beyond the threshold %s (p=%.3f)", r.deltaString(), m.Format(r.Limit), p)
	default:
		r.Status, r.Reason = Better, fmt.Sprintf("%s (p=%.3f)", r.deltaString(), p)
	}
	return r
}

func summary(s *benchmath.Sample, alpha float64) Summary {
	sum := benchmath.AssumeNothing.Summary(s, 1-alpha)
	out := Summary{N: len(s.Values), Median: sum.Center}
	if !math.IsInf(sum.Lo, 0) && !math.IsInf(sum.Hi, 0) {
		out.Lo, out.Hi = &sum.Lo, &sum.Hi
	}
	return out
}

func (r *Row) setDelta() {
	r.Delta = r.New.Median - r.Base.Median
	if r.Base.Median != 0 {
		c := r.Delta / math.Abs(r.Base.Median)
		r.Change = &c
	}
}

// deltaString is "+12.3%" against a non-zero base, else the absolute change.
func (r *Row) deltaString() string {
	if r.Change != nil {
		return fmt.Sprintf("%+.1f%%", 100**r.Change)
	}
	sign := "+"
	if r.Delta < 0 {
		sign = "-"
	}
	return sign + r.metric.Format(math.Abs(r.Delta))
}

// exactRow compares a deterministic count: each side must hold one value.
func exactRow(r Row, bv, nv []float64) Row {
	r.Base = Summary{N: len(bv), Median: bv[0]}
	r.New = Summary{N: len(nv), Median: nv[0]}
	for _, side := range []struct {
		name string
		vs   []float64
	}{{"base", bv}, {"new", nv}} {
		if lo, hi := slices.Min(side.vs), slices.Max(side.vs); lo != hi {
			r.Status = Unstable
			r.Reason = fmt.Sprintf("%s varies from %v to %v; a count the kernel makes deterministic should not", side.name, lo, hi)
			return r
		}
	}
	r.setDelta()
	worse := (r.Delta > 0) == r.metric.HigherIsWorse
	switch {
	case r.Delta == 0:
		r.Status, r.Reason = Same, fmt.Sprintf("equal (%v)", r.Base.Median)
	case worse:
		r.Status, r.Reason = Worse, fmt.Sprintf("changed %v → %v (exact)", r.Base.Median, r.New.Median)
	default:
		r.Status, r.Reason = Better, fmt.Sprintf("changed %v → %v (exact)", r.Base.Median, r.New.Median)
	}
	return r
}

// Regressions returns the rows that regressed.
func (v *Verdict) Regressions() []Row {
	return v.rowsWith(Worse)
}

func (v *Verdict) rowsWith(s ...Status) []Row {
	var rs []Row
	for _, r := range v.Rows {
		if slices.Contains(s, r.Status) {
			rs = append(rs, r)
		}
	}
	return rs
}

// Exit statuses for the compare command.
const (
	ExitOK         = 0
	ExitRegression = 1
	ExitUnusable   = 2
	// ExitPlotFailed: the verdict was written, but -plot's figure could
	// not be drawn (a figure asked for and missing fails the command).
	ExitPlotFailed = 3
)

// ExitStatus maps the result of Compare (or of reading its input) to the
// command's exit status and a one-line reason. A regression wins over rows
// that could not be decided: it is a finding either way. In a
// cross-source comparison a "regression" is new's source doing worse than
// base's, and the reason says so.
func ExitStatus(v *Verdict, err error) (int, string) {
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		if !errors.Is(err, ErrUnusable) {
			msg = ErrUnusable.Error() + ": " + msg
		}
		return ExitUnusable, msg
	}
	if reg := v.Regressions(); len(reg) > 0 {
		var parts []string
		for _, r := range reg[:min(3, len(reg))] {
			parts = append(parts, fmt.Sprintf("%s at %s %s", r.Metric, r.Step, r.shortDelta()))
		}
		more := ""
		if len(reg) > 3 {
			more = fmt.Sprintf(" and %d more", len(reg)-3)
		}
		what := "regression"
		if v.CrossSource {
			what = fmt.Sprintf("cross-source: %s worse than %s", v.NewSource, v.BaseSource)
		}
		return ExitRegression, fmt.Sprintf("%s in %d of %d comparisons: %s%s", what, len(reg), len(v.Rows), strings.Join(parts, "; "), more)
	}
	if few := v.rowsWith(TooFew); len(few) > 0 {
		return ExitUnusable, v.tooFew(few)
	}
	if bad := v.rowsWith(Unstable); len(bad) > 0 {
		return ExitUnusable, fmt.Sprintf("cannot decide %d of %d comparisons: %s %s: %s", len(bad), len(v.Rows), bad[0].Metric, bad[0].Step, bad[0].Reason)
	}
	what := "no regression"
	if v.CrossSource {
		what = fmt.Sprintf("cross-source: %s not worse than %s", v.NewSource, v.BaseSource)
	}
	return ExitOK, fmt.Sprintf("%s in %d comparisons at alpha %v", what, len(v.Rows), v.Alpha)
}

// tooFew is the one line for the rows with too few samples: the need once,
// and the fewest samples either side had.
func (v *Verdict) tooFew(few []Row) string {
	nb, nn := few[0].Base.N, few[0].New.N
	for _, r := range few {
		nb, nn = min(nb, r.Base.N), min(nn, r.New.N)
	}
	return fmt.Sprintf("too few samples: need %d per side at alpha %v; %d of %d comparisons have fewer (base %d, new %d at the least)",
		v.MinSamples, v.Alpha, len(few), len(v.Rows), nb, nn)
}

// Word is the verdict in one word, as the JSON's "verdict": "same",
// "regression" ("worse" across sources) or "unusable".
func Word(code int, crossSource bool) string {
	switch {
	case code == ExitOK:
		return "same"
	case code == ExitRegression && crossSource:
		return "worse"
	case code == ExitRegression:
		return "regression"
	}
	return "unusable"
}

func (r *Row) shortDelta() string {
	switch {
	case r.Exact && r.Delta == 0:
		return "="
	case r.Exact:
		return fmt.Sprintf("%v → %v", r.Base.Median, r.New.Median)
	}
	return r.deltaString()
}
