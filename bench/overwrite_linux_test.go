package bench

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// earlierRun makes dir hold an earlier run's results.
func earlierRun(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// refusedField is the field of the *OptionError that err must be.
func refusedField(t *testing.T, err error) string {
	t.Helper()
	var oe *OptionError
	if !errors.As(err, &oe) {
		t.Fatalf("%v: want an *OptionError", err)
	}
	return oe.Field
}

// TestRefuseOverwrite: RunAndWrite and Matrix refuse a result directory
// that holds an earlier run before any sweep starts, unless Force; a new
// or empty directory is fine. The sweeps have Reps 0, so getting past the
// check is the Reps error, at once.
func TestRefuseOverwrite(t *testing.T) {
	root := t.TempDir()
	held, empty := filepath.Join(root, "held"), t.TempDir()
	earlierRun(t, held)
	sweep := Options{Source: "emu", Rates: []int{500}, RcvBufs: []int{212992}, Delays: []time.Duration{0}, Duration: time.Second, Reps: 0, Out: held}
	_, err := RunAndWrite(context.Background(), sweep, io.Discard)
	if refusedField(t, err) != "Out" || !strings.Contains(err.Error(), held+": holds the results.json of an earlier run (Force overwrites it)") {
		t.Errorf("RunAndWrite into %s: %v", held, err)
	}
	if code := ExitCode(err); code != ExitUsage {
		t.Errorf("exit status %d, want %d", code, ExitUsage)
	}
	for _, s := range []Options{{Out: held, Force: true}, {Out: empty}, {Out: filepath.Join(root, "new")}} {
		o := sweep
		o.Out, o.Force = s.Out, s.Force
		if _, err := RunAndWrite(context.Background(), o, io.Discard); refusedField(t, err) != "Reps" {
			t.Errorf("RunAndWrite into %s, Force %v: %v; want it past the check", o.Out, o.Force, err)
		}
	}

	// The second kernel's directory is refused before the first one's sweep.
	earlierRun(t, filepath.Join(root, "matrix", "7.3"))
	mo := MatrixOptions{Kernels: []string{"6.1", "7.3"}, Out: filepath.Join(root, "matrix"), Sweep: sweep}
	mo.Sweep.Source = "kmod" // in the VM
	if _, err := Matrix(context.Background(), mo, io.Discard); refusedField(t, err) != "Out" || !strings.Contains(err.Error(), filepath.Join(mo.Out, "7.3")) {
		t.Errorf("Matrix into %s: %v", mo.Out, err)
	}
	mo.Sweep.Force = true
	if _, err := Matrix(context.Background(), mo, io.Discard); refusedField(t, err) != "Reps" {
		t.Errorf("Matrix with Force: %v; want it past the check", err)
	}
}

// TestABRefusesOverwrite: AB refuses an Out whose base/ or new/ holds an
// earlier run before it builds anything.
func TestABRefusesOverwrite(t *testing.T) {
	for _, sub := range []string{ABBaseDir, ABNewDir} {
		out := t.TempDir()
		earlierRun(t, filepath.Join(out, sub))
		o := ABOptions{Base: filepath.Join(out, "missing.ko"), New: filepath.Join(out, "missing.ko"),
			Sweep: Options{Source: "kmod", Rates: []int{500}, RcvBufs: []int{212992}, Delays: []time.Duration{0}, Duration: time.Second, Reps: 6, Out: out}}
		if _, err := AB(context.Background(), o); err == nil || refusedField(t, err) != "Out" || !strings.Contains(err.Error(), filepath.Join(out, sub)) {
			t.Errorf("AB with %s holding a run: %v", sub, err)
		}
	}
}

// TestFewReps: fewer samples per step than compare needs at the default
// alpha (6) is a note on Reps; 6 is none, and so is an invalid sweep (its
// error says what is wrong).
func TestFewReps(t *testing.T) {
	o := Options{Source: "emu", Duration: time.Second}
	for reps, want := range map[int]string{2: "Reps 2: compare needs at least 6 samples per side", 6: "", 0: ""} {
		o.Reps = reps
		if oe := o.FewReps(); (oe == nil) != (want == "") || oe != nil && !strings.Contains(oe.Error(), want) {
			t.Errorf("Reps %d: %v; want %q", reps, oe, want)
		}
	}
}
