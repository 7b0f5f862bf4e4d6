package plots_test

import (
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/imp2/imp2/internal/results"
)

// latencyOf is a histogram holding n values of 0 ns.
func latencyOf(t *testing.T, n int64) *results.Latency {
	h := hdrhistogram.New(1, 1e10, 3)
	if err := h.RecordValues(0, n); err != nil {
		t.Fatal(err)
	}
	l, err := results.NewLatency(h)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
