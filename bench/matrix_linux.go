package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/imp2/imp2/internal/kreport"
	"github.com/imp2/imp2/internal/vm"
)

// MatrixKernels reads a list of matrix kernels, comma-separated, or "all".
func MatrixKernels(list string) ([]string, error) {
	names := vm.MatrixNames()
	if list != "all" {
		names = strings.Split(list, ",")
	}
	var kernels []string
	for _, k := range names {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if _, err := vm.LookupKernel(k); err != nil { // said as run's -kernel says it, without the package's prefix
			return nil, fmt.Errorf("no kernel %q in the matrix: want one of %s (internal/vm/matrix.go)", k, strings.Join(vm.MatrixNames(), ", "))
		}
		kernels = append(kernels, k)
	}
	if len(kernels) == 0 {
		return nil, fmt.Errorf("names no kernel (all, or a list of %s)", strings.Join(vm.MatrixNames(), ", "))
	}
	return kernels, nil
}

// Matrix runs o.Sweep on each kernel in turn, writing each result
// directory (WriteOutputs, its summary on stdout), then the cross-kernel
// report of those that completed (Merge). A kernel whose sweep fails is
// reported on the sweep's Progress and does not stop the others (the error
// then names them all); an invalid sweep (*OptionError) or an interrupt
// stops at once. A kernel's directory holding an earlier run's results is
// refused before the first sweep, unless o.Sweep.Force.
func Matrix(ctx context.Context, o MatrixOptions, stdout io.Writer) (*MatrixResult, error) {
	res := &MatrixResult{}
	dirs := make([]string, len(o.Kernels))
	for i, k := range o.Kernels {
		dirs[i] = filepath.Join(o.Out, k)
	}
	if err := refuseOverwrite(o.Sweep.Force, dirs...); err != nil {
		return res, err
	}
	note := o.Sweep.Progress
	if note == nil {
		note = io.Discard
	}
	for i, k := range o.Kernels {
		s := o.Sweep
		s.VM, s.Kernel, s.Out = true, k, dirs[i]
		fmt.Fprintf(note, "imp2-bench matrix: kernel %s → %s\n", k, s.Out)
		run, err := RunAndWrite(ctx, s, stdout)
		var oe *OptionError
		switch {
		case errors.As(err, &oe), errors.Is(err, ErrNothingCompleted):
			return res, err
		case err != nil:
			fmt.Fprintf(note, "imp2-bench matrix: kernel %s: %v\n", k, err)
			res.Failed = append(res.Failed, k)
		case run.Partial:
			res.Partial = run.Describe()
			return res, nil
		default:
			res.Done = append(res.Done, s.Out)
		}
	}
	if len(res.Done) == 0 {
		return res, errors.New("no kernel's sweep completed")
	}
	if err := Merge(res.Done, filepath.Join(o.Out, "report"), stdout); err != nil || len(res.Failed) == 0 {
		return res, err
	}
	return res, fmt.Errorf("the sweep failed on %s", strings.Join(res.Failed, ", "))
}

// Merge writes the cross-kernel report of result directories, one per
// kernel, into out (internal/kreport) and names it on stdout.
func Merge(dirs []string, out string, stdout io.Writer) error {
	rep, paths, err := kreport.Merge(dirs, out)
	if err != nil {
		return err
	}
	names := make([]string, len(rep.Kernels))
	for i, k := range rep.Kernels {
		names[i] = k.Name
	}
	fmt.Fprintf(stdout, "cross-kernel report of %s: %s\n", strings.Join(names, ", "), strings.Join(paths, ", "))
	return nil
}
