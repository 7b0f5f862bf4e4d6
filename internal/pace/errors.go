package pace

import (
	"sync/atomic"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// MaxError is the largest timing error Errors records exactly; larger
// values are clamped to it (and still counted in Max).
const MaxError = int64(3600e9)

// Errors collects timing errors (actual − scheduled, ns). Record is for
// one goroutine and allocates nothing; IntervalMax may be read and reset
// from another.
type Errors struct {
	h         *hdrhistogram.Histogram
	max       int64
	early     int64
	intervMax atomic.Int64
}

// NewErrors returns an empty error histogram (1 ns to 1 h, 3 significant
// digits).
func NewErrors() *Errors {
	return &Errors{h: hdrhistogram.New(1, MaxError, 3)}
}

// Record adds one error: actual and scheduled times in ns on the same
// clock. A negative error (early) counts as 0 and in Early.
func (e *Errors) Record(actual, scheduled int64) {
	d := actual - scheduled
	if d < 0 {
		e.early++
		d = 0
	}
	if d > e.max {
		e.max = d
	}
	if d > e.intervMax.Load() {
		e.intervMax.Store(d)
	}
	_ = e.h.RecordValue(min(d, MaxError))
}

// IntervalMax returns the largest error since the previous call and resets it.
func (e *Errors) IntervalMax() int64 { return e.intervMax.Swap(0) }

// Summary is a digest of the recorded errors, in ns.
type Summary struct {
	Count int64 `json:"count"`
	Early int64 `json:"early"` // errors below 0, counted as 0
	P50   int64 `json:"p50_ns"`
	P90   int64 `json:"p90_ns"`
	P99   int64 `json:"p99_ns"`
	P999  int64 `json:"p999_ns"`
	Max   int64 `json:"max_ns"`
	Mean  int64 `json:"mean_ns"`
}

// Summary returns the percentiles of the recorded errors.
func (e *Errors) Summary() Summary {
	if e.h.TotalCount() == 0 {
		return Summary{}
	}
	return Summary{
		Count: e.h.TotalCount(), Early: e.early,
		P50: e.h.ValueAtQuantile(50), P90: e.h.ValueAtQuantile(90),
		P99: e.h.ValueAtQuantile(99), P999: e.h.ValueAtQuantile(99.9),
		Max: e.max, Mean: int64(e.h.Mean()),
	}
}
