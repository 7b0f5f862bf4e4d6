package record

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The names of rotated files are strftime patterns, as tcpdump's -w with
// -G. No strftime package is served by the module proxy, and the few
// conversions a file name needs fit in this file: the date and time
// fields, %s (Unix seconds), %F and %T, and %% for a percent sign. Any
// other conversion is refused, so that a typo does not end up in every
// file name.

// strftimeUnits is what each conversion writes, and the finest time it
// tells apart (a name that changes less often than files are made would
// repeat).
var strftimeUnits = map[byte]time.Duration{
	'Y': 366 * 24 * time.Hour, 'y': 366 * 24 * time.Hour, 'm': 28 * 24 * time.Hour,
	'd': 24 * time.Hour, 'e': 24 * time.Hour, 'j': 24 * time.Hour, 'F': 24 * time.Hour,
	'H': time.Hour, 'M': time.Minute, 'S': time.Second, 's': time.Second, 'T': time.Second,
}

// parseStrftime checks a pattern and returns the finest time its
// conversions tell apart (0 when it has none: a plain name).
func parseStrftime(p string) (finest time.Duration, err error) {
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if i++; i == len(p) {
			return 0, errors.New("ends in a lone %")
		}
		if p[i] == '%' {
			continue
		}
		u, ok := strftimeUnits[p[i]]
		if !ok {
			return 0, fmt.Errorf("unknown conversion %%%c (want %%Y %%y %%m %%d %%e %%j %%H %%M %%S %%s %%F %%T or %%%%)", p[i])
		}
		if finest == 0 || u < finest {
			finest = u
		}
	}
	return finest, nil
}

// strftime formats t by the pattern p, which parseStrftime accepted.
func strftime(p string, t time.Time) string {
	var b strings.Builder
	two := func(n int) { fmt.Fprintf(&b, "%02d", n) }
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 == len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		switch p[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'y':
			two(t.Year() % 100)
		case 'm':
			two(int(t.Month()))
		case 'd':
			two(t.Day())
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'H':
			two(t.Hour())
		case 'M':
			two(t.Minute())
		case 'S':
			two(t.Second())
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		default: // %%
			b.WriteByte(p[i])
		}
	}
	return b.String()
}
