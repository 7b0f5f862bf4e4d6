package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
		{[]string{"merge", "-out", t.TempDir(), shards[0], bad}, exitFailure, "shard " + bad},
	} {
		var o, e bytes.Buffer
		if code := run(c.args, &o, &e); code != c.code || !strings.Contains(e.String(), c.want) {
			t.Errorf("imp2-bench %q: exit %d, stderr %q; want %d and %q", c.args, code, e.String(), c.code, c.want)
		}
	}
}

func TestParseMatrix(t *testing.T) {
	kernels, out, opts, err := parseMatrix([]string{"-rates", "500", "-out=x", "-kernels", "7.3,6.1", "-reps", "2", "-source", "nflog"}, io.Discard)
	if err != nil || !slices.Equal(kernels, []string{"7.3", "6.1"}) || out != "x" {
		t.Fatalf("got %q %q %v", kernels, out, err)
	}
	if o := opts; !slices.Equal(o.Rates, []int{500}) || o.Reps != 2 || o.Source != "nflog" || !o.VM || !o.Plot {
		t.Errorf("run's flags: rates %v reps %d source %q vm %v plot %v; want 500, 2, nflog, in the VM, plots", o.Rates, o.Reps, o.Source, o.VM, o.Plot)
	}
	kernels, out, _, err = parseMatrix(nil, io.Discard)
	if err != nil || !slices.Equal(kernels, vm.MatrixNames()) || out != filepath.Join("results", "matrix") {
		t.Errorf("defaults: %q %q %v; want every matrix kernel into results/matrix", kernels, out, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-kernels", "5.4"}, `-kernels 5.4: vm: no kernel "5.4"`},
		{[]string{"-kernels", ","}, "names no kernel"},
		{[]string{"-vm"}, "vm: matrix runs every sweep in the VM"},
		{[]string{"-kernel", "6.1"}, "-kernel: matrix runs every sweep in the VM"},
		{[]string{"-out"}, "flag needs an argument: -out"},
		{[]string{"-source", "emu"}, "runs kmod or nflog"},
	} {
		if _, _, _, err := parseMatrix(c.args, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseMatrix(%q): %v; want %q", c.args, err, c.want)
		}
	}
	// A bad run flag is refused before any VM boots.
	var o, e bytes.Buffer
	if code := run([]string{"matrix", "-kernels", "6.1", "-out", t.TempDir(), "-reps", "0"}, &o, &e); code != exitUsage || !strings.Contains(e.String(), "-reps 0") {
		t.Errorf("matrix -reps 0: exit %d, %q; want %d and the run flag's error", code, e.String(), exitUsage)
	}
}
