package bench

import (
	"context"
	"fmt"
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

// GateOptions is a CI gate: a baseline run and its sweep again.
type GateOptions struct {
	// Baseline is the committed run, named BaselineLabel in the verdict.
	Baseline      *results.Run
	BaselineLabel string
	// Sweep repeats the baseline's sweep; the new run is written into
	// its Out.
	Sweep Options
	// Compare holds the thresholds.
	Compare compare.Config
}

// Gate runs o.Sweep, writes the new run into o.Sweep.Out and compares it
// with the baseline, exact counts only on the baseline's kernel (a note
// says when they are left out). Interrupted after some samples, it
// returns the partial run and no verdict: part of a sweep is not judged.
// Errors wrapping compare.ErrUnusable are the comparison's.
func Gate(ctx context.Context, o GateOptions) (*results.Run, *compare.Verdict, error) {
	new, err := Run(ctx, o.Sweep)
	if err != nil {
		return nil, nil, err
	}
	if err := results.Write(filepath.Join(o.Sweep.Out, ResultsFile), new); err != nil {
		return new, nil, err
	}
	if new.Partial {
		return new, nil, nil
	}
	note := ExactOnSameKernel(o.Baseline, new)
	v, err := compare.Compare(o.Baseline, new, o.BaselineLabel, "this run", o.Compare)
	if err != nil {
		return new, nil, err
	}
	if note != "" {
		v.Notes = append(v.Notes, note)
	}
	return new, v, nil
}
