package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/kreport"
	"github.com/imp2/imp2/internal/vm"
)

// The real shards internal/kreport is tested on (imp2-bench run -vm
// -kernel 6.1 and 7.3).
var shards = []string{
	filepath.Join("..", "..", "internal", "kreport", "testdata", "shards", "6.1"),
	filepath.Join("..", "..", "internal", "kreport", "testdata", "shards", "7.3"),
}

func TestMergeCommand(t *testing.T) {
	// The directories before -out (as the issue writes it) and after.
	for _, args := range [][]string{
		{"merge", shards[0], shards[1], "-out", filepath.Join(t.TempDir(), "report")},
		{"merge", "-out", filepath.Join(t.TempDir(), "report"), shards[0], shards[1]},
	} {
		out := args[slices.Index(args, "-out")+1]
		stdout, _ := runBench(t, args...)
		if !strings.Contains(stdout, "cross-kernel report of 6.1, 7.3") {
			t.Errorf("%q: stdout %q", args, stdout)
		}
		for _, f := range []string{kreport.JSONFile, kreport.MarkdownFile, "kernels.png", "kernels.svg"} {
			if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
				t.Errorf("%q: %s: %v", args, f, err)
			}
		}
	}

	bad := filepath.Join(t.TempDir(), "nothing-here")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"merge", shards[0]}, exitUsage, "usage: imp2-bench merge -out DIR"},
		{[]string{"merge", "-out", t.TempDir()}, exitUsage, "usage: imp2-bench merge -out DIR"},
		{[]string{"merge", "-out", t.TempDir(), shards[0], bad}, exitUsage, "imp2-bench merge: exit 2: unusable input: shard " + bad},
		{[]string{"merge", "-out", t.TempDir(), shards[0], shards[0]}, exitUsage, "imp2-bench merge: exit 2: unusable input: shards " + shards[0] + " and " + shards[0] + " both ran source kmod"},
	} {
		var o, e bytes.Buffer
		if code := run(c.args, &o, &e); code != c.code || !strings.HasPrefix(e.String(), "imp2-bench merge: ") || !strings.Contains(e.String(), c.want) || strings.Contains(e.String(), "input: kreport:") {
			t.Errorf("imp2-bench %q: exit %d, stderr %q; want %d and %q", c.args, code, e.String(), c.code, c.want)
		}
	}
}

// matrixOf is the options a matrix command line parses into, as Dispatch
// parses them, without running anything.
func matrixOf(t *testing.T, args ...string) *matrixOptions {
	t.Helper()
	c := cli.New("imp2-bench matrix", matrixSub.Usage, "", "")
	o := matrixFlags(c)
	if _, code, ok := c.ParseArgs(args, 0, 0, io.Discard, io.Discard); !ok {
		t.Fatalf("%q: exit %d", args, code)
	}
	if err := checkMatrix(o); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return o
}

func TestParseMatrix(t *testing.T) {
	o := matrixOf(t, "-rates", "500", "-out=x", "-kernels", "7.3,6.1", "-reps", "2", "-source", "nflog")
	if !slices.Equal(o.Kernels, []string{"7.3", "6.1"}) || o.Out != "x" {
		t.Fatalf("got %+v", o)
	}
	if s := o.Sweep; !slices.Equal(s.Rates, []int{500}) || s.Reps != 2 || s.Source != "nflog" || !s.VM || !s.Plot {
		t.Errorf("run's flags: rates %v reps %d source %q vm %v plot %v; want 500, 2, nflog, in the VM, plots", s.Rates, s.Reps, s.Source, s.VM, s.Plot)
	}
	o = matrixOf(t)
	if !slices.Equal(o.Kernels, vm.MatrixNames()) || o.Out != filepath.Join("results", "matrix") {
		t.Errorf("defaults: %+v; want every matrix kernel into results/matrix", o)
	}
	// Refused before any VM boots: one line, exit 2.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-kernels", "5.4"}, `-kernels 5.4: no kernel "5.4" in the matrix: want one of 6.1, 6.12`},
		{[]string{"-kernels", ","}, "names no kernel"},
		{[]string{"-vm"}, "unknown flag -vm: matrix runs every sweep in the VM"},
		{[]string{"-kernel", "6.1"}, "unknown flag -kernel: did you mean -kernels (matrix runs every sweep in the VM"},
		{[]string{"-out"}, "flag needs an argument: -out"},
		{[]string{"-source", "emu"}, "runs kmod or nflog"},
		{[]string{"-kernels", "6.1", "-out", t.TempDir(), "-reps", "0"}, "-reps 0"},
	} {
		var o, e bytes.Buffer
		if code := run(append([]string{"matrix"}, c.args...), &o, &e); code != exitUsage || !strings.Contains(e.String(), c.want) || strings.Count(e.String(), "\n") != 1 {
			t.Errorf("matrix %q: exit %d, %q; want one line with %q", c.args, code, e.String(), c.want)
		}
	}
}
