package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/compare"
)

// TestCalibrate measures the gate's detection power (README, gate
// section): IMP2_CALIBRATE=1 go test ./bench -run Calibrate -timeout 0 -v.
// Each round is one VM boot of GateAB with the base, two builds identical
// to it and one test variant per delay, all interleaved: every round
// gives two identical-build decisions (false alarms if flagged; they
// share the base's samples) and one decision per delay. With more
// modules per round than the gate's two, a module's samples lie further
// apart in time than in the gate, so the power measured here is if
// anything lower than the gate's. Settings, from the environment:
// IMP2_CALIBRATE_ROUNDS (default 10), IMP2_CALIBRATE_DELAYS (ns, default
// 10000,2000,1000,500), IMP2_CALIBRATE_CONSUMER_DELAYS (ns of the
// consumer's test variants, default 10000,1000), IMP2_CALIBRATE_ICOUNT
// (default the gate's; none: without), IMP2_CALIBRATE_COUNT and _REPS
// (default the gate's), IMP2_CALIBRATE_BASE (default the gate's, the
// merge-base with main; HEAD on a branch whose merge-base predates the
// gate's consumer).
func TestCalibrate(t *testing.T) {
	if os.Getenv("IMP2_CALIBRATE") == "" {
		t.Skip("set IMP2_CALIBRATE=1 to calibrate the gate (VM boots, minutes each)")
	}
	rounds := envInt(t, "IMP2_CALIBRATE_ROUNDS", 10)
	delays := envInts(t, "IMP2_CALIBRATE_DELAYS", []int{10000, 2000, 1000, 500})
	consumerDelays := envInts(t, "IMP2_CALIBRATE_CONSUMER_DELAYS", []int{10000, 1000})
	o := GateABOptions{Base: os.Getenv("IMP2_CALIBRATE_BASE"),
		Reps: envInt(t, "IMP2_CALIBRATE_REPS", DefaultGateReps), Count: envInt(t, "IMP2_CALIBRATE_COUNT", DefaultGateCount),
		ICount: DefaultGateICount, Rule: DefaultGateRule, Candidates: []GateCandidate{{}, {}},
	}
	if ic, ok := os.LookupEnv("IMP2_CALIBRATE_ICOUNT"); ok {
		o.ICount = ic // GateAB reads "none" as without
	}
	for _, d := range delays {
		o.Candidates = append(o.Candidates, GateCandidate{DelayNS: d})
	}
	for _, d := range consumerDelays {
		o.Candidates = append(o.Candidates, GateCandidate{ConsumerDelayNS: d})
	}
	flagged := make([]int, len(o.Candidates))
	change := make([][]float64, len(o.Candidates))
	var took []time.Duration
	for r := 0; r < rounds; r++ {
		res, err := GateAB(context.Background(), o)
		if err != nil {
			t.Fatalf("round %d: %v", r+1, err)
		}
		took = append(took, res.Elapsed)
		t.Logf("round %d/%d (%.0f s):\n%s", r+1, rounds, res.Elapsed.Seconds(), res.Report())
		for i, ds := range res.Decisions {
			if ds[0].Status == compare.Worse {
				flagged[i]++
			}
			change[i] = append(change[i], ds[0].NewMedian-ds[0].BaseMedian)
		}
		t.Log(calibrationTable(o, r+1, flagged, change, took))
	}
}

// calibrationTable is the README's table after rounds rounds.
func calibrationTable(o GateABOptions, rounds int, flagged []int, change [][]float64, took []time.Duration) string {
	var b strings.Builder
	ic := o.ICount
	if ic == "" {
		ic = "none"
	}
	fmt.Fprintf(&b, "calibration: %d rounds, -icount %s, %d pairs of %d packets, metric %s, alpha %g, min change %.0f%%\n",
		rounds, ic, o.Reps, o.Count, GateMetrics[0].Name, o.Rule.Alpha, 100*o.Rule.MinChange)
	fmt.Fprintf(&b, "| injected delay | flagged | median Δ cost/event | boot+measure time per round |\n|---|---|---|---|\n")
	var total time.Duration
	for _, d := range took {
		total += d
	}
	mean := total / time.Duration(len(took))
	fa := flagged[0] + flagged[1]
	fmt.Fprintf(&b, "| 0 (identical builds) | %d / %d false alarms | %s | %.0f s |\n", fa, 2*rounds, medianNs(append(change[0], change[1]...)), mean.Seconds())
	for i, c := range o.Candidates[2:] {
		what := fmt.Sprintf("+%d ns", c.DelayNS)
		if c.ConsumerDelayNS > 0 {
			what = fmt.Sprintf("consumer +%d ns", c.ConsumerDelayNS)
		}
		fmt.Fprintf(&b, "| %s | %d / %d detected | %s | |\n", what, flagged[i+2], rounds, medianNs(change[i+2]))
	}
	return b.String()
}

func medianNs(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf("%+.1f µs", s[len(s)/2]/1000)
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: not a number", name, v)
	}
	return n
}

func envInts(t *testing.T, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: %q is not a positive number of ns", name, v, f)
		}
		out = append(out, n)
	}
	return out
}
