package main

import (
	"path/filepath"
	"testing"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/results"
)

// TestQueueExactInVM overflows a 16 KiB buffer with the real module, both
// with and without NETLINK_NO_ENOBUFS: the queue trace must be exact, every
// sequence gap must open with the queue within one truesize of the limit
// (results.Queue.DropsAtLimit: the kernel's admission rule), the gaps must
// hold every lost event, and all drop accountings must still agree.
func TestQueueExactInVM(t *testing.T) {
	for _, noENOBUFS := range []string{"false", "true"} {
		t.Run("no-enobufs="+noENOBUFS, func(t *testing.T) {
			dir := t.TempDir()
			runBench(t, "run", "-vm", "-source", "kmod", "-rates", "16000", "-rcvbufs", "16K", "-delays", "0",
				"-duration", "400ms", "-reps", "2", "-overhead=false", "-plot=false", "-trace-frames", "0",
				"-no-enobufs="+noENOBUFS, "-out", dir)
			run, err := results.Read(filepath.Join(dir, bench.ResultsFile))
			if err != nil {
				t.Fatal(err)
			}
			var gaps int
			for _, st := range run.Steps {
				for _, s := range st.Samples {
					q := &s.Queue
					if q.Method != results.QueueExact || q.TrueSize <= 0 {
						t.Fatalf("rep %d: queue method %q, truesize %d; want the exact trace", s.Rep, q.Method, q.TrueSize)
					}
					if !s.Drops.Agree {
						t.Errorf("rep %d: drop accountings disagree: %s", s.Rep, s.Drops.Disagreement)
					}
					if err := q.DropsAtLimit(); err != nil {
						t.Errorf("rep %d: %v", s.Rep, err)
					}
					if s.Dropped() != q.GapEvents() {
						t.Errorf("rep %d: %d dropped, the gaps hold %d", s.Rep, s.Dropped(), q.GapEvents())
					}
					gaps += len(q.Gaps)
					above := 0 // points above the limit: reads inside the module's read-to-check window
					for _, p := range q.Samples {
						if p.RmemAlloc > q.RcvBuf {
							above++
						}
					}
					t.Logf("rep %d: %d sent, %d dropped in %d gaps; rcvbuf %d, truesize %d, peak %d, %d of %d points above rcvbuf",
						s.Rep, s.Sent, s.Dropped(), len(q.Gaps), q.RcvBuf, q.TrueSize, q.PeakBytes, above, len(q.Samples))
				}
			}
			if gaps == 0 {
				t.Fatal("no sample overflowed: 16000 pps into 16 KiB should")
			}
		})
	}
}
