//go:build !linux

package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/imp2/imp2/internal/results"
)

// errUnsupported is what every measurement says off Linux: floods, the
// module, NFLOG and network namespaces are Linux's.
var errUnsupported = fmt.Errorf("bench: unsupported on %s", runtime.GOOS)

// Run needs Linux.
func Run(context.Context, Options) (*results.Run, error) { return nil, errUnsupported }

// AB needs Linux.
func AB(context.Context, ABOptions) (*ABResult, error) { return nil, errUnsupported }

// ABGuest needs Linux.
func ABGuest(context.Context, Options, [2]string, [2]string) ([2]*results.Run, error) {
	return [2]*results.Run{}, errUnsupported
}

// Guest needs Linux.
func Guest(context.Context, string, io.Writer) (bool, error) { return false, errUnsupported }

// MatrixKernels needs Linux (the VM's kernels).
func MatrixKernels(string) ([]string, error) { return nil, errUnsupported }

// Matrix needs Linux.
func Matrix(context.Context, MatrixOptions, io.Writer) (*MatrixResult, error) {
	return nil, errUnsupported
}

// Merge needs Linux.
func Merge([]string, string, io.Writer) error { return errUnsupported }

// GateAB needs Linux.
func GateAB(context.Context, GateABOptions) (*GateABResult, error) { return nil, errUnsupported }

// GateConsumer needs Linux.
func GateConsumer(context.Context, string, io.Reader, io.Writer) error { return errUnsupported }
