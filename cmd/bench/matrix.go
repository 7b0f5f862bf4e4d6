package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/vm"
)

// parseMatrix reads matrix's flags and run's sweep flags into the options
// of bench.Matrix; ok false: exit with code, the message written.
func parseMatrix(args []string, stdout, stderr io.Writer) (*bench.MatrixOptions, int, bool) {
	c := cli.New("imp2-bench matrix", "imp2-bench matrix [-kernels all|LIST] [-out DIR] [run's flags]", `
Run run's sweep in the VM on each kernel of the matrix, one result directory per
kernel (DIR/KERNEL), then the cross-kernel report of those that completed
(DIR/report). A kernel that fails does not stop the others (the status is then
1); a usage error or an interrupt stops at once.`, exitsSweep)
	c.Habits = map[string]string{"vm": "matrix runs every sweep in the VM", "kernel": cli.Like("kernels", "matrix runs every sweep in the VM, on the kernels -kernels names")}
	o := &bench.MatrixOptions{Sweep: bench.Options{Progress: stderr, VM: true}}
	list := c.Flags.String("kernels", "all", "the kernels to run on: all, or a comma-separated list of "+strings.Join(vm.MatrixNames(), ", "))
	c.Flags.StringVar(&o.Out, "out", filepath.Join("results", "matrix"), "matrix `DIR`: one result directory per kernel (DIR/KERNEL), the report in DIR/report")
	sourceFlags(c.Flags, &o.Sweep)
	sweepFlags(c.Flags, &o.Sweep)
	var err error
	if _, code, ok := c.ParseArgs(args, 0, 0, stdout, stderr); !ok {
		return nil, code, false
	} else if o.Kernels, err = bench.MatrixKernels(*list); err != nil {
		return nil, c.Fail(stderr, "-kernels %s: %v", *list, err), false
	} else if err = o.Sweep.Validate(); err != nil {
		return nil, exitFor(stderr, c.Name+":", err), false
	}
	return o, exitOK, true
}

// matrixCmd is `imp2-bench matrix` (bench.Matrix).
func matrixCmd(args []string, stdout, stderr io.Writer) int {
	o, code, ok := parseMatrix(args, stdout, stderr)
	if !ok {
		return code
	}
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Sweep.Hard = hard
	if res, err := bench.Matrix(ctx, *o, stdout); err != nil {
		return exitFor(stderr, "imp2-bench matrix:", err)
	} else if res.Partial != "" {
		fmt.Fprintln(stderr, "imp2-bench matrix:", res.Partial)
		return exitInterrupted
	}
	return exitOK
}

// mergeCmd is `imp2-bench merge -out DIR DIR...` (bench.Merge).
func mergeCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench merge", "imp2-bench merge -out DIR RESULTDIR...", `
Write the cross-kernel report of result directories made elsewhere (CI shards),
one per kernel (or one per kernel and source: sources side by side), into DIR.
Flags may come before or after the directories.`, exitsPlain)
	out := c.Flags.String("out", "", "report `DIR` (kernels.md, kernels.json, kernels.png/svg); required")
	dirs, code, ok := c.ParseArgs(args, 1, -1, stdout, stderr)
	if !ok {
		return code
	} else if *out == "" {
		return c.Fail(stderr, "-out is required (usage: %s)", c.Usage)
	} else if err := bench.Merge(dirs, *out, stdout); err != nil {
		return exitFor(stderr, "imp2-bench merge:", err)
	}
	return exitOK
}
