package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imp2/imp2/bench"
)

func TestGateUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gate", "-test-delays", "10us"}, `invalid value "10us" for flag -test-delays: "10us": not a positive integer`},
		{[]string{"gate", "-reps", "5"}, "-reps 5: the rule at alpha 0.01 needs at least 8 pairs"},
		{[]string{"gate", "-count", "10"}, "-count 10: want 100 to 1000000 packets per sample"},
		{[]string{"gate", "-test-delays", "20000000"}, "-test-delays 20000000 (candidate 1): want 0 to 9999999 ns"},
		{[]string{"gate", "-test-consumer-delays", "-3"}, `invalid value "-3" for flag -test-consumer-delays: "-3": not a positive integer`},
		{[]string{"gate", "-test-consumer-delays", "20000000"}, "-test-consumer-delays 20000000 (candidate 1): want 0 to 9999999 ns"},
		{[]string{bench.GateConsumerCommand}, "want one argument, the network namespace's name"},
		{[]string{bench.GuestCommand, "a", "b"}, "want one argument, the job file"},
	} {
		var o, e strings.Builder
		if code := run(tc.args, &o, &e); code != exitUsage || !strings.Contains(e.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d naming %q:\n%s", tc.args, code, exitUsage, tc.want, e.String())
		}
	}
}

// TestGateUnusableBaseline: a broken exact-count baseline stops the gate
// before it builds or boots anything, naming the file.
func TestGateUnusableBaseline(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, bench.ExactBaselineFile), []byte(`{"kernels": [`), 0o644)
	var o, e strings.Builder
	code := run([]string{"gate", "-baseline", dir}, &o, &e)
	if code != 2 || !strings.Contains(e.String(), "exit 2: unusable input: ") || !strings.Contains(e.String(), bench.ExactBaselineFile) {
		t.Errorf("exit %d: %s", code, e.String())
	}
}

// TestGateFlagsDelayPassesIdentical is the gate in the VM: the base
// revision's module and consumer (HEAD's: the merge-base with main may
// predate the gate's consumer), this tree's (identical to HEAD in code
// when it is clean), a test variant whose module is 200 µs slower per
// event and one whose consumer is 20 µs slower per event, in one boot.
// The identical build must pass and both variants be flagged, by the
// gate's deciding metric, and the exact counts must match the committed
// baseline (a copy, so a kernel release without an entry does not write
// into the checkout). The gate's 12 pairs, not the rule's minimum of 8:
// at 8 the 99% interval runs from the smallest ratio to the largest, so
// one outlier pair decides.
func TestGateFlagsDelayPassesIdentical(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "results", "ci-baseline", bench.ExactBaselineFile))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, bench.ExactBaselineFile), b, 0o644)
	var o, e bytes.Buffer
	code := run([]string{"gate", "-base", "HEAD", "-baseline", dir, "-test-delays", "200000",
		"-test-consumer-delays", "20000", "-count", "1000"}, &o, &e)
	out := o.String()
	t.Logf("gate:\n%s", out)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d (the variants flagged)\n%s", code, exitFailure, e.String())
	}
	metric := bench.GateMetrics[0].Name
	same, variants, ok := strings.Cut(out, "working tree +200000 ns/event")
	if !ok {
		t.Fatalf("no decision on the module variant")
	}
	slowModule, slowConsumer, ok := strings.Cut(variants, "working tree consumer +20000 ns/event")
	if !ok {
		t.Fatalf("no decision on the consumer variant")
	}
	if line := lineWith(same, "decides: "+metric); !strings.Contains(line, ": same (") {
		t.Errorf("the identical build: %q, want same", line)
	}
	if line := lineWith(slowModule, "decides: "+metric); !strings.Contains(line, ": regression (") {
		t.Errorf("the 200 µs module variant: %q, want regression", line)
	}
	if line := lineWith(slowConsumer, "decides: "+metric); !strings.Contains(line, ": regression (") {
		t.Errorf("the 20 µs consumer variant: %q, want regression", line)
	}
	if line := lineWith(out, "exact counts"); !strings.Contains(line, "same as the baseline") && !strings.Contains(line, "new baseline for") {
		t.Errorf("exact counts: %q", line)
	}
}
