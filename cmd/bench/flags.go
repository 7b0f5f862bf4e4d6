package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseList reads the comma-separated values of a list flag with parse,
// which says whether a value is one of want; an empty list is an error.
func parseList[T any](flag, s, want string, parse func(string) (T, bool)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, ok := parse(f)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not %s", flag, f, want)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty list", flag)
	}
	return out, nil
}

func parseInts(flag, s string) ([]int, error) {
	return parseList(flag, s, "a positive integer", func(f string) (int, bool) {
		n, err := strconv.Atoi(f)
		return n, err == nil && n > 0
	})
}

// parseSizes reads byte sizes with optional K or M (binary) suffixes.
func parseSizes(flag, s string) ([]int, error) {
	return parseList(flag, s, "a size in bytes (e.g. 16384, 64K, 8M)", func(f string) (int, bool) {
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

func parseDurations(flag, s string) ([]time.Duration, error) {
	return parseList(flag, s, "a duration (e.g. 0, 20us, 1ms)", func(f string) (time.Duration, bool) {
		if f == "0" {
			return 0, true
		}
		d, err := time.ParseDuration(f)
		return d, err == nil && d >= 0
	})
}
