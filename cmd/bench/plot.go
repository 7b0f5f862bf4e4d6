package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/plots"
	"github.com/imp2/imp2/internal/results"
)

// plotCmd is `imp2-bench plot DIR`.
func plotCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: imp2-bench plot DIR")
		return exitUsage
	}
	path := args[0]
	dir := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir = filepath.Dir(path)
	} else {
		path = filepath.Join(dir, bench.ResultsFile)
	}
	run, err := results.Read(path)
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitFailure
	}
	files, err := plots.WriteAll(run, filepath.Join(dir, bench.PlotsDir))
	if err != nil {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitFailure
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return exitOK
}
