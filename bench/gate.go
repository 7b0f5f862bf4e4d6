package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// ExactOnSameKernel removes the exact counts from both runs when their
// kernels differ and says so: another kernel's truesize makes another
// count, which is no regression of ours.
func ExactOnSameKernel(base, new *results.Run) string {
	bk, nk := base.Environment.KernelRelease, new.Environment.KernelRelease
	if bk == nk {
		return ""
	}
	for _, r := range []*results.Run{base, new} {
		for i := range r.Steps {
			for j := range r.Steps[i].Samples {
				r.Steps[i].Samples[j].BurstHeld = nil
			}
		}
	}
	return fmt.Sprintf("exact counts (burst-held) not compared: the baseline ran on kernel %s, this run on %s; refresh the baseline on this kernel (make baseline) to gate them", bk, nk)
}

// GateConfigFile is the thresholds file of a baseline directory, beside
// its results.json.
const GateConfigFile = "compare.json"

// Repeat is the sweep of base again, into out, without plots, trace or
// the overhead figure (the gate compares none of them). QThresh is the
// baseline's for nflog and one event per message otherwise, as imp2 sends.
func Repeat(base *results.Run, out string) Options {
	p := base.Params
	o := Options{
		Source: base.Source.Kind, VM: base.Environment.InVM,
		Rates: p.RatesPPS, RcvBufs: p.RcvBufs, Delays: p.ConsumerDelays,
		Duration: p.StepDuration, Reps: p.Repetitions, NoENOBUFS: p.NoENOBUFS,
		QThresh: 1, Out: out,
	}
	if o.Source == results.SourceNFLOG {
		o.QThresh = uint32(p.NFLOGQThreshold)
	}
	return o
}

// GateOptions is a CI gate: a baseline directory and its sweep again.
type GateOptions struct {
	// Baseline is the directory of the committed run, with its
	// thresholds (GateConfigFile) unless Compare.Config names others.
	Baseline string
	// Out keeps the new run; "" writes it into a temporary directory,
	// removed unless the run is partial.
	Out     string
	Compare CompareOptions
	// Build, Progress and Hard are the sweep's (Options).
	Build    string
	Progress io.Writer
	Hard     <-chan struct{}
}

// GateResult is what a gate found: Verdict is nil when the run is
// partial (part of a sweep is not judged), and Dir then keeps it.
type GateResult struct {
	Base, New *results.Run
	Verdict   *compare.Verdict
	Dir       string
}

// Gate repeats the baseline's sweep (Repeat), writes the new run into
// o.Out and compares it with the baseline, exact counts only on the
// baseline's kernel (a note says when they are left out). Errors wrapping
// compare.ErrUnusable, and those before the sweep ran (the baseline, its
// thresholds), are the input's: compare.ExitStatus makes them exit 2.
func Gate(ctx context.Context, o GateOptions) (*GateResult, error) {
	if o.Compare.Config == "" {
		if p := filepath.Join(o.Baseline, GateConfigFile); fileExists(p) {
			o.Compare.Config = p
		}
	}
	cfg, err := o.Compare.Load()
	if err != nil {
		return nil, err
	}
	base, err := results.Read(o.Baseline)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", compare.ErrUnusable, err)
	}
	res := &GateResult{Base: base, Dir: o.Out}
	if res.Dir == "" {
		if res.Dir, err = os.MkdirTemp("", "imp2-gate-"); err != nil {
			return nil, err
		}
		defer func() {
			if res.New == nil || !res.New.Partial {
				os.RemoveAll(res.Dir)
			}
		}()
	}
	sweep := Repeat(base, res.Dir)
	sweep.Build, sweep.Progress, sweep.Hard = o.Build, o.Progress, o.Hard
	if err := sweep.Validate(); err != nil {
		return nil, fmt.Errorf("%w: the baseline's sweep cannot be repeated: %v", compare.ErrUnusable, err)
	}
	if sweep.Progress != nil {
		fmt.Fprintf(sweep.Progress, "gate: the baseline's sweep: %s\n", sweep)
	}
	if res.New, err = Run(ctx, sweep); err != nil {
		res.New = nil
		return res, err
	}
	if err := results.Write(filepath.Join(res.Dir, ResultsFile), res.New); err != nil {
		res.New = nil
		return res, err
	}
	if res.New.Partial {
		return res, nil
	}
	note := ExactOnSameKernel(base, res.New)
	if res.Verdict, err = compare.Compare(base, res.New, o.Baseline, "this run", cfg); err != nil {
		return res, err
	}
	if note != "" {
		res.Verdict.Notes = append(res.Verdict.Notes, note)
	}
	return res, nil
}
