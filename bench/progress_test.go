package bench

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/results/resultstest"
)

// TestSweepProgress: on a terminal the sweep shows a bar of the points
// done with an ETA, redrawn in place; elsewhere one plain line per sample
// and no bar.
func TestSweepProgress(t *testing.T) {
	sweep := func(p *progress) {
		p.begin(3)
		for rep := range 3 {
			p.sample(results.StepKey{RatePPS: 1000, RcvBuf: 16 << 10}, rep)
			s := &results.Sample{Rep: rep, AchievedPPS: 999, Received: 500}
			s.Drops.Agree = true
			p.done(s)
		}
	}
	var tty bytes.Buffer
	p := newProgress(&tty)
	p.tty = true // what newProgress says on a terminal
	sweep(p)
	bar := regexp.MustCompile(`\r\033\[K\[=+>? *\]  67% 2/3 ETA \S+  .* rep 2: 999 pps, 500 events`)
	end := regexp.MustCompile(`\r\033\[K\[=+\] 100% 3/3 ETA 0s  .* rep 3: 999 pps, 500 events, drop ratio [0-9.]+\n$`)
	if !bar.MatchString(tty.String()) || !end.MatchString(tty.String()) {
		t.Errorf("terminal: %q; want a bar per sample with the points done and an ETA", tty.String())
	}
	var log bytes.Buffer
	sweep(newProgress(&log))
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 3 || strings.ContainsAny(log.String(), "\r\033") || strings.Contains(log.String(), "ETA") || !strings.HasPrefix(lines[2], "[3/3 ") {
		t.Errorf("not a terminal: %q; want 3 plain lines, no bar", log.String())
	}
}

// TestSummaryQueuePeakUnit: the summary's queue peak (the receive queue's
// peak rmem_alloc) gives its unit, bytes, where the column beside it is a
// count of events.
func TestSummaryQueuePeakUnit(t *testing.T) {
	o := resultstest.Default()
	o.Rates, o.RcvBufs, o.Reps, o.Events = []int{1000}, []int{16384}, 1, 10
	run := resultstest.Run(o)
	var b bytes.Buffer
	for _, peak := range []struct {
		bytes int64
		want  string
	}{{832, "   832 B  "}, {11264, "  11 KiB  "}, {2 << 20, "  2 MiB  "}} {
		run.Steps[0].Samples[0].Queue.PeakBytes = peak.bytes
		b.Reset()
		writeSummary(&b, run)
		if !strings.Contains(b.String(), peak.want) {
			t.Errorf("queue peak of %d bytes: summary\n%s\nwant %q in it", peak.bytes, b.String(), peak.want)
		}
	}
}
