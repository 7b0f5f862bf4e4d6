package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/imp2/imp2/internal/kreport"
	"github.com/imp2/imp2/internal/vm"
)

// matrixCmd is `imp2-bench matrix`: the same sweep (run's flags) on each
// kernel of the matrix in the VM, one result directory per kernel
// (OUT/KERNEL), then the cross-kernel report of those that completed
// (OUT/report). A kernel that fails does not stop the others; the status
// is then 1. A usage error or an interrupt stops at once.
func matrixCmd(args []string, stdout, stderr io.Writer) int {
	kernels, out, rest, err := parseMatrix(args)
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench matrix:", err)
		return exitUsage
	}
	var done, failed []string
	for _, k := range kernels {
		dir := filepath.Join(out, k)
		fmt.Fprintf(stderr, "imp2-bench matrix: kernel %s → %s\n", k, dir)
		rc := runCmd(append(rest, "-vm", "-kernel", k, "-out", dir), stdout, stderr)
		switch rc {
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

// parseMatrix takes matrix's own flags out of args and leaves run's.
func parseMatrix(args []string) (kernels []string, out string, rest []string, err error) {
	list, out := "all", filepath.Join("results", "matrix")
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch name {
		case "kernels", "out":
			if !hasValue {
				if i+1 == len(args) {
					return nil, "", nil, fmt.Errorf("-%s needs a value", name)
				}
				i++
				value = args[i]
			}
			if name == "out" {
				out = value
			} else {
				list = value
			}
		case "vm", "kernel":
			return nil, "", nil, fmt.Errorf("-%s: matrix runs every sweep in the VM, on the kernels -kernels names", name)
		default:
			rest = append(rest, args[i])
		}
	}
	if list == "all" {
		return vm.MatrixNames(), out, rest, nil
	}
	for _, k := range strings.Split(list, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if _, err := vm.LookupKernel(k); err != nil {
			return nil, "", nil, fmt.Errorf("-kernels %s: %w", list, err)
		}
		kernels = append(kernels, k)
	}
	if len(kernels) == 0 {
		return nil, "", nil, fmt.Errorf("-kernels %q names no kernel (all, or a list of %s)", list, strings.Join(vm.MatrixNames(), ", "))
	}
	return kernels, out, rest, nil
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
		fmt.Fprintln(stderr, "usage: imp2-bench merge -out DIR RESULTDIR... (one result directory per kernel)")
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
