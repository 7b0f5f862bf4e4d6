package bench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseSizes: -rcvbufs reads each element as every imp2 byte count
// (README: K/M/G/T, 16M = 16MB = 16MiB), and says of an element too large
// that it is too large, naming it, rather than that it is not a size.
func TestParseSizes(t *testing.T) {
	for in, want := range map[string][]int{
		"212992,16K":  {212992, 16384},
		"16KiB, 16kb": {16384, 16384},
		"1M,16MiB":    {1 << 20, 16 << 20},
		"2147483646":  {MaxRcvBuf},
	} {
		if got, err := ParseSizes(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseSizes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"16K,2G":     `"2G": too large: an effective receive buffer is at most 2147483646 bytes`,
		"1T":         `"1T": too large`,
		"16K,x":      `"x": want a size in bytes`,
		"-16K":       `"-16K": a size must not be negative`,
		",":          "empty list",
		"16K,,17Q":   `"17Q": want a size`,
		"2147483647": `"2147483647": too large`,
	} {
		if got, err := ParseSizes(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSizes(%q) = %v, %v; want an error saying %q", in, got, err, want)
		}
	}
}

// TestParseDurations: -delays reads each element as the duration flags
// do (a bare number is seconds) and calls a negative one negative.
func TestParseDurations(t *testing.T) {
	for in, want := range map[string][]time.Duration{
		"0,20us":       {0, 20 * time.Microsecond},
		"50":           {50 * time.Second},
		"0.00005, 1ms": {50 * time.Microsecond, time.Millisecond},
	} {
		if got, err := ParseDurations(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseDurations(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"-1us":   `"-1us": negative: want 0 or more`,
		"0,-0.5": `"-0.5": negative`,
		"0,20xs": `"20xs": want a duration such as 5s`,
		"":       "empty list",
	} {
		if got, err := ParseDurations(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDurations(%q) = %v, %v; want an error saying %q", in, got, err, want)
		}
	}
}
