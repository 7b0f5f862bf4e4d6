package bench

import (
	"context"
	"github.com/imp2/imp2/internal/results"
	"io"
)

// Run runs the sweep of o, inside the VM with o.VM, until it ends or ctx
// is cancelled: then the run holds the samples that completed and is
// marked partial, or the error is ErrNothingCompleted. The topology is
// removed either way.
func Run(ctx context.Context, o Options) (*results.Run, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.VM {
		return runInVM(ctx, &o)
	}
	return sweep(ctx, &o, newProgress(o.Progress))
}
