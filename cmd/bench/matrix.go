package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/kreport"
	"github.com/imp2/imp2/internal/vm"
)

// matrixCmd is `imp2-bench matrix`: the same sweep (run's flags) on each
// kernel of the matrix in the VM, one result directory per kernel
// (OUT/KERNEL), then the cross-kernel report of those that completed
// (OUT/report). A kernel that fails does not stop the others; the status
// is then 1. A usage error or an interrupt stops at once.
func matrixCmd(args []string, stdout, stderr io.Writer) int {
	kernels, out, o, err := parseMatrix(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	} else if err != nil {
		exitFor(stderr, "imp2-bench matrix:", err)
		return exitUsage
	}
	var done, failed []string
	for _, k := range kernels {
		dir := filepath.Join(out, k)
		fmt.Fprintf(stderr, "imp2-bench matrix: kernel %s → %s\n", k, dir)
		o.Kernel, o.Out = k, dir
		switch rc := sweep(*o, stdout, stderr); rc {
		case exitOK:
			done = append(done, dir)
		case exitUsage, exitInterrupted:
			return rc
		default:
			failed = append(failed, k)
		}
	}
	status := exitOK
	if len(failed) > 0 {
		fmt.Fprintf(stderr, "imp2-bench matrix: the sweep failed on %s\n", strings.Join(failed, ", "))
		status = exitFailure
	}
	if len(done) == 0 {
		return exitFailure
	}
	return max(status, mergeDirs(done, filepath.Join(out, "report"), stdout, stderr))
}

// errInVM refuses run's -vm and -kernel: matrix sets both for each kernel.
var errInVM = errors.New("matrix runs every sweep in the VM, on the kernels -kernels names")

// parseMatrix reads matrix's own flags and run's sweep flags into the
// options each kernel's sweep starts from (in the VM, Kernel and Out still
// unset).
func parseMatrix(args []string, stderr io.Writer) (kernels []string, out string, o *bench.Options, err error) {
	fs := flag.NewFlagSet("imp2-bench matrix", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o = &bench.Options{Progress: stderr, VM: true}
	list := fs.String("kernels", "all", "the kernels to run on: all, or a comma-separated list of "+strings.Join(vm.MatrixNames(), ", "))
	fs.StringVar(&out, "out", filepath.Join("results", "matrix"), "matrix directory: one result directory per kernel (DIR/KERNEL), the report in DIR/report")
	fs.BoolFunc("vm", "refused: matrix runs every sweep in the VM", func(string) error { return errInVM })
	fs.Func("kernel", "refused: -kernels names the kernels", func(string) error { return errInVM })
	sourceFlags(fs, o)
	finish := sweepFlags(fs, o)
	if err = fs.Parse(args); err == nil {
		err = finish()
	}
	if err != nil {
		return nil, "", nil, err
	}
	names := vm.MatrixNames()
	if *list != "all" {
		names = strings.Split(*list, ",")
	}
	for _, k := range names {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if _, err := vm.LookupKernel(k); err != nil {
			return nil, "", nil, fmt.Errorf("-kernels %s: %w", *list, err)
		}
		kernels = append(kernels, k)
	}
	if len(kernels) == 0 {
		return nil, "", nil, fmt.Errorf("-kernels %q names no kernel (all, or a list of %s)", *list, strings.Join(vm.MatrixNames(), ", "))
	}
	return kernels, out, o, nil
}

// mergeCmd is `imp2-bench merge [-out DIR] DIR...`: the cross-kernel
// report of result directories made elsewhere (CI shards). Flags may come
// before or after the directories.
func mergeCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imp2-bench merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "report directory (kernels.md, kernels.json, kernels.png/svg); required")
	var dirs []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		dirs, args = append(dirs, fs.Arg(0)), fs.Args()[1:]
	}
	if *out == "" || len(dirs) == 0 {
		fmt.Fprintln(stderr, "usage: imp2-bench merge -out DIR RESULTDIR... (one result directory per kernel and source)")
		return exitUsage
	}
	return mergeDirs(dirs, *out, stdout, stderr)
}

func mergeDirs(dirs []string, out string, stdout, stderr io.Writer) int {
	rep, paths, err := kreport.Merge(dirs, out)
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitFailure
	}
	names := make([]string, len(rep.Kernels))
	for i, k := range rep.Kernels {
		names[i] = k.Name
	}
	fmt.Fprintf(stdout, "cross-kernel report of %s: %s\n", strings.Join(names, ", "), strings.Join(paths, ", "))
	return exitOK
}
