package bench

import (
	"strings"
	"testing"
)

// The decision rule on constructed pairs: a difference is reported only
// when its interval leaves zero out.
func TestPairedOverhead(t *testing.T) {
	base := []float64{7865, 7000, 8100, 6500, 7300, 9000, 7700, 6900, 7450, 8300}
	shift := func(d []float64) []float64 {
		out := make([]float64, len(base))
		for i := range base {
			out[i] = base[i] + d[i%len(d)]
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		without, with []float64
		distinct      bool
		text          string
	}{
		{"steady cost", base, shift([]float64{300, 320, 280, 310}), true, "+305 ns/event"},
		{"steady saving", base, shift([]float64{-200, -210, -190}), true, "-200 ns/event"},
		// The "7865 -> 6609 ns/event (-16.0%)": drift between
		// pairs, no difference within them.
		{"noise around zero", base, shift([]float64{-1256, 900, -40, 1100, -700, 30, 600, -900, 50, -20}), false, "not distinguishable from zero"},
		{"one stalled pair", base, shift([]float64{5, 9, 3, 7, 6, 8, 4, 5, 9, 20000}), true, "98% CI +4 .. +9, 10 interleaved pairs"},
		{"too few pairs", base[:4], shift([]float64{300})[:4], false, "too few for a 95% confidence interval: not distinguishable from zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := pairedOverhead("m", "ns/event", tc.without, tc.with)
			s := o.String()
			if o.Distinguishable() != tc.distinct || !strings.Contains(s, tc.text) {
				t.Errorf("%s: distinguishable %v, want %v; want %q in it", s, o.Distinguishable(), tc.distinct, tc.text)
			}
			if tc.distinct == strings.Contains(s, "not distinguishable") {
				t.Errorf("%s: says the opposite of Distinguishable", s)
			}
			if ci := o.DiffCI; ci != nil && (ci[0] > o.Diff || o.Diff > ci[1]) {
				t.Errorf("diff %v outside its interval %v", o.Diff, *ci)
			}
		})
	}
	if pairedOverhead("m", "ns/event", nil, nil) != nil {
		t.Error("no pairs, yet an overhead")
	}
}
