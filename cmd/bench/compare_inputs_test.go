package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed runs of the module and of its NFLOG peer (README).
var (
	kmodDir  = filepath.Join("..", "..", "results", "default")
	nflogDir = filepath.Join("..", "..", "results", "nflog")
)

// TestCompareCrossSource: imp2 against NFLOG is unusable unless asked for,
// then labelled as a cross-source comparison in the table, the JSON and
// the plot's legend, from directories, results.json and bench.txt alike.
func TestCompareCrossSource(t *testing.T) {
	code, out, errOut := compareRun(kmodDir, nflogDir)
	if code != exitUsage || !strings.Contains(errOut, "from source kmod") || !strings.Contains(errOut, "-cross-source") {
		t.Errorf("kmod vs nflog without -cross-source: exit %d\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{
		{kmodDir, nflogDir},
		{filepath.Join(kmodDir, "bench.txt"), filepath.Join(nflogDir, "results.json")},
		{filepath.Join(kmodDir, "bench.txt"), filepath.Join(nflogDir, "bench.txt")},
	} {
		code, out, errOut := compareRun(append([]string{"-cross-source"}, args...)...)
		if code == exitUsage || !strings.Contains(out, "cross-source comparison: base is source kmod, new is source nflog") ||
			!strings.Contains(out, "\nexit ") || !strings.Contains(lineWith(out, "\nexit "), "cross-source: nflog ") {
			t.Errorf("compare -cross-source %v: exit %d\n%s%s", args, code, out, errOut)
		}
		if strings.Contains(out, "REGRESSION") {
			t.Errorf("a cross-source row says REGRESSION:\n%s", lineWith(out, "REGRESSION"))
		}
	}
	plotDir := t.TempDir()
	code, out, errOut = compareRun("-cross-source", "-json", "-plot", plotDir, kmodDir, filepath.Join(nflogDir, "bench.txt"))
	var v struct {
		Verdict     string `json:"verdict"`
		CrossSource bool   `json:"cross_source"`
		BaseSource  string `json:"base_source"`
		NewSource   string `json:"new_source"`
		Exit        int    `json:"exit"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.CrossSource || v.BaseSource != "kmod" || v.NewSource != "nflog" || v.Exit != code ||
		(v.Verdict != "worse" && v.Verdict != "same") {
		t.Errorf("-json: exit %d, %v, %+v\n%s", code, err, v, errOut)
	}
	if _, err := os.Stat(filepath.Join(plotDir, "compare.png")); err != nil {
		t.Errorf("-plot from a bench.txt: %v\n%s", err, errOut)
	}
}

// TestCompareJSONUnusable: -json gives one object even when nothing could
// be compared.
func TestCompareJSONUnusable(t *testing.T) {
	code, out, errOut := compareRun("-json", kmodDir, filepath.Join(t.TempDir(), "nothing"))
	var v struct {
		Verdict, Error, Base, New string
		Exit                      int
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitUsage || v.Verdict != "unusable" || v.Exit != 2 ||
		!strings.Contains(v.Error, "no such file") || v.Base != kmodDir {
		t.Errorf("exit %d, %v, %+v\n%s%s", code, err, v, out, errOut)
	}
	if n := strings.Count(errOut, "exit 2: "); n != 1 {
		t.Errorf("stderr should carry the one-line reason once:\n%s", errOut)
	}
}

// TestCompareNamesTheSide: an input that cannot be read is named as the
// base or the new side.
func TestCompareNamesTheSide(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexist")
	for _, c := range []struct {
		base, new, want string
	}{
		{kmodDir, missing, "imp2-bench compare: exit 2: unusable input: new: stat " + missing + ": no such file"},
		{missing, kmodDir, "imp2-bench compare: exit 2: unusable input: base: stat " + missing + ": no such file"},
	} {
		if code, out, errOut := compareRun(c.base, c.new); code != exitUsage || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("compare %s %s: exit %d, want 2 and %q\n%s%s", c.base, c.new, code, c.want, out, errOut)
		}
	}
}

// TestComparePlotFails: a -plot that cannot be written fails the command
// (exit 3) after the verdict.
func TestComparePlotFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := compareRun("-plot", filepath.Join(file, "plots"), kmodDir, kmodDir)
	if code != 3 || !strings.Contains(out, "\nexit 0: no regression") || !strings.Contains(errOut, "exit 3: no comparison plot") {
		t.Errorf("exit %d, want 3 after the verdict\n%s%s", code, out, errOut)
	}
}
