package bench

import (
	"path/filepath"
	"time"
)

// MatrixOptions is one sweep on several kernels of the matrix, each in
// the VM.
type MatrixOptions struct {
	// Kernels are matrix kernel names (MatrixKernels reads a list).
	Kernels []string
	// Out holds one result directory per kernel (Out/KERNEL) and the
	// cross-kernel report (Out/report).
	Out string
	// Sweep is the sweep each kernel runs; Matrix sets its VM, Kernel
	// and Out.
	Sweep Options
}

// MatrixResult is what a matrix run left: the result directories of the
// kernels whose sweep completed and the kernels whose sweep failed.
// Partial describes the interrupted run it stopped at ("" when none was).
type MatrixResult struct {
	Done, Failed []string
	Partial      string
}

// DefaultOut is the result directory of a run that names none:
// results/PREFIX-TIME (UTC).
func DefaultOut(prefix string) string {
	return filepath.Join("results", prefix+"-"+time.Now().UTC().Format("20060102-150405"))
}
