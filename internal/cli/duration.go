package cli

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// durationValue is a time.Duration flag that also takes a bare number of
// seconds: "-duration 5" is 5s and "-stats 0.5" 500ms, as tcpreplay's
// "--stats 5"; "1m30s", "250ms" and the rest of time.ParseDuration work
// as ever.
type durationValue time.Duration

// DurationVar defines a duration flag (see durationValue) on fs; every
// duration flag of the imp2 commands is one.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}

// ParseDuration reads a duration the way the duration flags do.
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if d := f * float64(time.Second); d <= float64(1<<63-1) && d >= -float64(1<<63) {
			return time.Duration(d), nil
		}
		return 0, fmt.Errorf("%s seconds is out of range", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 5s, 250ms or 1m30s, or a number of seconds")
	}
	return d, nil
}

func (d *durationValue) Set(s string) error {
	v, err := ParseDuration(s)
	*d = durationValue(v)
	return err
}

func (d *durationValue) String() string {
	if d == nil {
		return "0s"
	}
	return time.Duration(*d).String()
}

func (d *durationValue) Get() any { return time.Duration(*d) }
