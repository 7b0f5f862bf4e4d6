package ci

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"

	"github.com/imp2/imp2/internal/vm"
)

var workflows = filepath.Join("..", "..", ".github", "workflows")

// TestWorkflowsLint runs actionlint on every workflow and fails on any
// finding: syntax, expressions, job needs, action inputs, runner labels.
// Shellcheck and pyflakes stay off (empty options): the CI machine has
// neither, and the result must not depend on what a machine has.
func TestWorkflowsLint(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(workflows, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflow in %s (%v)", workflows, err)
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{Oneline: true})
	if err != nil {
		t.Fatal(err)
	}
	findings, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) > 0 {
		t.Errorf("actionlint: %d findings:\n%s", len(findings), out.String())
	}
}

// TestKernelMatrixWorkflowRunsTheMatrix: the workflow's job matrix is the
// kernel matrix of internal/vm/matrix.go, every kernel in order and no
// other, so a kernel added there runs in CI too.
func TestKernelMatrixWorkflowRunsTheMatrix(t *testing.T) {
	path := filepath.Join(workflows, "kernel-matrix.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wf, errs := actionlint.Parse(b)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", path, errs[0])
	}
	job := wf.Jobs["kernel"]
	if job == nil || job.Strategy == nil || job.Strategy.Matrix == nil || job.Strategy.Matrix.Rows["kernel"] == nil {
		t.Fatalf("%s: no job \"kernel\" with a strategy.matrix.kernel", path)
	}
	var got []string
	for _, v := range job.Strategy.Matrix.Rows["kernel"].Values {
		s, ok := v.(*actionlint.RawYAMLString)
		if !ok {
			t.Fatalf("%s: matrix.kernel value %s is not a string", path, v)
		}
		got = append(got, s.Value)
	}
	if want := vm.MatrixNames(); !slices.Equal(got, want) {
		t.Errorf("%s: matrix.kernel is %s; internal/vm/matrix.go has %s", path, strings.Join(got, ", "), strings.Join(want, ", "))
	}
	report := wf.Jobs["report"]
	if report == nil || len(report.Needs) != 1 || report.Needs[0].Value != "kernel" {
		t.Errorf("%s: no job \"report\" that needs the kernel jobs", path)
	}
}
