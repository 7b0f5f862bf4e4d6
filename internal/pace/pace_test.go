package pace

import (
	"math"
	"testing"
	"time"
)

func TestOffsets(t *testing.T) {
	if got := RateOffset(10000, 10000); got != 1e9 {
		t.Errorf("RateOffset(10000, 10k) = %d", got)
	}
	if got := RateOffset(3, 3); got != 1e9 {
		t.Errorf("RateOffset(3, 3) = %d", got)
	}
	// No drift: the millionth deadline at 1M/s is exactly 1 s.
	if got := RateOffset(1e6, 1e6); got != 1e9 {
		t.Errorf("RateOffset(1e6, 1e6) = %d", got)
	}
	if got := ScaleOffset(123456789, 1); got != 123456789 {
		t.Errorf("ScaleOffset speed 1 = %d", got)
	}
	if got := ScaleOffset(1000, 2); got != 500 {
		t.Errorf("ScaleOffset speed 2 = %d", got)
	}
}

// Until never returns before its deadline and, on an idle enough machine,
// not long after. The bound is loose, for a shared 2-core machine at a load
// of 5-7 where ordinary threads wait milliseconds for a CPU; it is not
// checked under the race detector.
func TestUntil(t *testing.T) {
	w := NewWaiter(NewClock(), 0)
	w.Lock()
	defer w.Unlock()
	e := NewErrors()
	start := w.Clock.Now()
	for i := int64(1); i <= 200; i++ {
		dl := start + i*int64(300*time.Microsecond)
		now := w.Until(dl)
		if now < dl {
			t.Fatalf("Until(%d) returned early at %d", dl, now)
		}
		e.Record(now, dl)
	}
	s := e.Summary()
	t.Logf("errors: %+v sleeps %d spun %v", s, w.Sleeps, time.Duration(w.Spun))
	if s.Count != 200 || s.Early != 0 {
		t.Errorf("count %d early %d", s.Count, s.Early)
	}
	if !raceEnabled && s.P50 > int64(5*time.Millisecond) {
		t.Errorf("median error %v: the waiter is not waking near its deadlines", time.Duration(s.P50))
	}
}

func TestErrorsNoAlloc(t *testing.T) {
	e := NewErrors()
	if n := testing.AllocsPerRun(1000, func() { e.Record(12345, 100) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}

// TestOffsetsSaturate: offsets past an int64 saturate instead of wrapping
// to an arbitrary value (a date in 1734).
func TestOffsetsSaturate(t *testing.T) {
	for _, c := range []struct {
		got, want int64
	}{
		{RateOffset(8, 1e-10), math.MaxInt64}, {ScaleOffset(1e9, 1e-300), math.MaxInt64},
		{ScaleOffset(-1e9, 1e-300), math.MinInt64}, {RateOffset(3, 2), 1_500_000_000}, {ScaleOffset(10, 4), 3},
		{Ns(math.NaN()), math.MaxInt64},
	} {
		if c.got != c.want {
			t.Errorf("got %d, want %d", c.got, c.want)
		}
	}
}
