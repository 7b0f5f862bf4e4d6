package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRotationCost measures what rotating costs the recorder at top
// speed: nlsend floods (blocking, so the receiver sets the pace) into
// imp2-record writing one zstd trace, then into one rotating every 256
// KiB, alternately, ROUNDS times (IMP2_RECORD_BENCH_ROUNDS, default 5;
// IMP2_RECORD_BENCH_N messages each, default 1000000); the figure is the
// median of the per-round ratios of nlsend's rate. Run it on purpose:
//
//	IMP2_RECORD_BENCH=1 go test -run RotationCost -v ./cmd/record
func TestRotationCost(t *testing.T) {
	if os.Getenv("IMP2_RECORD_BENCH") == "" {
		t.Skip("set IMP2_RECORD_BENCH=1 to measure")
	}
	n := envInt("IMP2_RECORD_BENCH_N", 1000000)
	rounds := envInt("IMP2_RECORD_BENCH_ROUNDS", 5)
	dir := t.TempDir()
	nlsend := filepath.Join(dir, "nlsend")
	if out, err := exec.Command("gcc", "-O2", "-o", nlsend, filepath.Join("..", "..", "tools", "nlpeer", "nlsend.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc nlsend: %v\n%s", err, out)
	}
	record := func(round int, rotate bool) float64 {
		out := filepath.Join(dir, fmt.Sprintf("r%d-%v", round, rotate), "t.pcapng.zst")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		port := fmt.Sprint(1000000 + rand.IntN(1000000))
		sender := startPeer(t, nlsend, "-p", port, "-n", fmt.Sprint(n))
		args := []string{"-family", "2", "-peer", port, "-o", out, "-count", fmt.Sprint(n), "-stats-timeout", "0"}
		if rotate {
			args = append(args, "-C", "256K")
		}
		s := runRecord(t, args...)
		rate := sender.rate(t)
		t.Logf("round %d rotate %v: nlsend %.0f/s, recorder %.0f/s, %d files, lost %d, writer stalls %d", round, rotate, rate, s.Rate, len(s.Files), s.Drops.Lost, s.Writer.Stalls)
		if s.ToUser != uint64(n) || s.Drops.Lost != 0 {
			t.Errorf("round %d rotate %v: %d frames to user, lost %d; want %d, 0", round, rotate, s.ToUser, s.Drops.Lost, n)
		}
		os.RemoveAll(filepath.Dir(out))
		return rate
	}
	var ratios []float64
	for round := range rounds {
		one := record(round, false)
		ratios = append(ratios, record(round, true)/one)
	}
	t.Logf("ROTATION %d msgs x %d rounds: rate rotating every 256 KiB / one file, per round %v, median %.2f", n, rounds, fmtRatios(ratios), median(ratios))
}
