package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseList reads comma-separated values with parse, which says whether
// a value is one of want; an empty list is an error.
func parseList[T any](s, want string, parse func(string) (T, bool)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, ok := parse(f)
		if !ok {
			return nil, fmt.Errorf("%q is not %s", f, want)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// ParseInts reads a list of positive integers ("1000,4000"), for
// Options.Rates.
func ParseInts(s string) ([]int, error) {
	return parseList(s, "a positive integer", func(f string) (int, bool) {
		n, err := strconv.Atoi(f)
		return n, err == nil && n > 0
	})
}

// ParseSizes reads a list of byte sizes with optional K or M (binary)
// suffixes ("16K,212992"), for Options.RcvBufs.
func ParseSizes(s string) ([]int, error) {
	return parseList(s, "a size in bytes (e.g. 16384, 64K, 8M)", func(f string) (int, bool) {
		mult, num := 1, f
		switch f[len(f)-1] {
		case 'K', 'k':
			mult, num = 1<<10, f[:len(f)-1]
		case 'M', 'm':
			mult, num = 1<<20, f[:len(f)-1]
		}
		n, err := strconv.Atoi(num)
		return n * mult, err == nil && n > 0 && n <= (1<<31-1)/mult
	})
}

// ParseDurations reads a list of Go durations, 0 allowed ("0,20us"), for
// Options.Delays.
func ParseDurations(s string) ([]time.Duration, error) {
	return parseList(s, "a duration (e.g. 0, 20us, 1ms)", func(f string) (time.Duration, bool) {
		if f == "0" {
			return 0, true
		}
		d, err := time.ParseDuration(f)
		return d, err == nil && d >= 0
	})
}
