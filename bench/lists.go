package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/cli"
)

// parseList reads comma-separated values with parse, whose error says
// why an element is refused; the list's error names the element. An
// empty list is an error.
func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
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
	return parseList(s, func(f string) (int, error) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return 0, errors.New("not a positive integer")
		}
		return n, nil
	})
}

// MaxRcvBuf is the largest effective receive buffer a step takes: a
// consumer asks for half of it and the kernel doubles that into
// sk_rcvbuf, an int, so at most twice imp2.MaxRcvBuf.
const MaxRcvBuf = 2 * imp2.MaxRcvBuf

// ParseSizes reads a list of byte sizes ("16K,212992"), for
// Options.RcvBufs: each element as every imp2 byte count is read
// (cli.ParseSize: K, M, G and T suffixes, powers of 1024, 16M = 16MB =
// 16MiB), at most MaxRcvBuf (Validate says the least). An error names the element and why.
func ParseSizes(s string) ([]int, error) {
	return parseList(s, func(f string) (int, error) {
		n, err := cli.ParseSize(f)
		switch {
		case err != nil:
			return 0, err
		case n > MaxRcvBuf:
			return 0, fmt.Errorf("too large: an effective receive buffer is at most %d bytes (2G less 2: the kernel doubles what the consumer asks into an int)", MaxRcvBuf)
		}
		return int(n), nil
	})
}

// ParseDurations reads a list of durations ("0,20us,0.001"), for
// Options.Delays: each element as the duration flags read theirs
// (cli.ParseDuration: a Go duration or a bare number of seconds), 0 or
// more. An error names the element and why.
func ParseDurations(s string) ([]time.Duration, error) {
	return parseList(s, func(f string) (time.Duration, error) {
		d, err := cli.ParseDuration(f)
		if err == nil && d < 0 {
			return 0, errors.New("negative: want 0 or more")
		}
		return d, err
	})
}
