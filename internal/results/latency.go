package results

import (
	"fmt"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency is one HdrHistogram of latencies in nanoseconds: the standard V2
// compressed, base64 encoding (readable by every HdrHistogram
// implementation, and a few hundred bytes where raw samples would be
// megabytes) plus the summary percentiles, so readers need not decode it.
type Latency struct {
	Count int64  `json:"count"`
	P50   int64  `json:"p50_ns"`
	P90   int64  `json:"p90_ns"`
	P99   int64  `json:"p99_ns"`
	P999  int64  `json:"p99_9_ns"`
	Max   int64  `json:"max_ns"`
	HDR   string `json:"hdr"`
}

// NewLatency summarises and encodes h.
func NewLatency(h *hdrhistogram.Histogram) (*Latency, error) {
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("encode histogram: %w", err)
	}
	l := summarise(h)
	l.HDR = string(enc)
	return &l, nil
}

func summarise(h *hdrhistogram.Histogram) Latency {
	return Latency{
		Count: h.TotalCount(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}

// Histogram decodes the stored histogram.
func (l *Latency) Histogram() (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode([]byte(l.HDR))
	if err != nil {
		return nil, fmt.Errorf("hdr: %w", err)
	}
	return h, nil
}

// validate checks the summary against the histogram it claims to summarise.
func (l *Latency) validate() error {
	h, err := l.Histogram()
	if err != nil {
		return err
	}
	want := summarise(h)
	want.HDR = l.HDR
	if *l != want {
		return fmt.Errorf("summary {count %d p50 %d p90 %d p99 %d p99.9 %d max %d} does not match its histogram {count %d p50 %d p90 %d p99 %d p99.9 %d max %d}",
			l.Count, l.P50, l.P90, l.P99, l.P999, l.Max,
			want.Count, want.P50, want.P90, want.P99, want.P999, want.Max)
	}
	return nil
}
