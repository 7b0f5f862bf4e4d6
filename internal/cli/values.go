package cli

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The flag types the imp2 commands share beyond the flag package's.

// durationValue is a time.Duration flag that also takes a bare number of
// seconds: "-duration 5" is 5s and "-stats 0.5" 500ms, as tcpreplay's
// "--stats 5"; "1m30s", "250ms" and the rest of time.ParseDuration work
// as ever. A negative duration is refused: no imp2 flag has a use for one.
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
	if err == nil && v < 0 {
		return errors.New("want 0 or more")
	}
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

// NoMax is IntVar's max for a number with no upper bound.
const NoMax = -1

// intValue is an integer flag with a range, so that a value out of it is
// refused as the flag is parsed, by the flag's name, before the engine's
// own check would name its option field.
type intValue[T int | int64] struct {
	p        *T
	min, max T
}

// IntVar defines an integer flag on fs taking min to max (max NoMax: no
// upper bound).
func IntVar[T int | int64](fs *flag.FlagSet, p *T, name string, value, min, max T, usage string) {
	*p = value
	fs.Var(&intValue[T]{p: p, min: min, max: max}, name, usage)
}

func (v *intValue[T]) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, 64)
	switch {
	case err != nil || int64(T(n)) != n:
		return errors.New("want a whole number")
	case v.max == NoMax && T(n) < v.min:
		return fmt.Errorf("want at least %d", v.min)
	case v.max != NoMax && (T(n) < v.min || T(n) > v.max):
		return fmt.Errorf("want %d to %d", v.min, v.max)
	}
	*v.p = T(n)
	return nil
}

func (v *intValue[T]) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*v.p), 10)
}

func (v *intValue[T]) Get() any { return *v.p }

func (v *intValue[T]) intFlag() {}

// uint32Value is a flag for a 32-bit number such as a netlink port id,
// in decimal, 0x hex or 0 octal; a larger one is refused.
type uint32Value uint32

// Uint32Var defines a uint32 flag on fs.
func Uint32Var(fs *flag.FlagSet, p *uint32, name string, value uint32, usage string) {
	*p = value
	fs.Var((*uint32Value)(p), name, usage)
}

func (v *uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return fmt.Errorf("want a number from 0 to %d", uint32(1<<32-1))
	}
	*v = uint32Value(n)
	return nil
}

func (v *uint32Value) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*v), 10)
}

func (v *uint32Value) Get() any { return uint32(*v) }

// listValue is a comma-separated list flag, read by its parse function
// (such as bench.ParseInts) as a whole: a bad element refuses the flag.
type listValue[T any] struct {
	p     *[]T
	parse func(string) ([]T, error)
	text  string
}

// ListVar defines a list flag on fs with the default value (which parse
// must accept unless it is "": an empty list).
func ListVar[T any](fs *flag.FlagSet, p *[]T, name, value string, parse func(string) ([]T, error), usage string) {
	l := &listValue[T]{p: p, parse: parse}
	if err := l.Set(value); err != nil && value != "" {
		panic(fmt.Sprintf("cli: the default %q of -%s: %v", value, name, err))
	}
	fs.Var(l, name, usage)
}

func (l *listValue[T]) Set(s string) error {
	v, err := l.parse(s)
	if err != nil {
		return err
	}
	*l.p, l.text = v, s
	return nil
}

func (l *listValue[T]) String() string {
	if l == nil {
		return ""
	}
	return l.text
}

func (l *listValue[T]) Get() any { return *l.p }

func (l *listValue[T]) listFlag() {}

// sizeUnits are ParseSize's suffixes, largest first.
var sizeUnits = []struct {
	suffix string
	bytes  int64
}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}

// FormatSize prints n in the largest unit that divides it, as ParseSize
// reads it back: 16M, 4G, 1000.
func FormatSize(n int64) string {
	for _, u := range sizeUnits {
		if n != 0 && n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseSize reads a byte count the way every imp2 command takes one
// (README: byte counts): a number of bytes, or with a K, M, G or T suffix
// (powers of 1024, optionally followed by B or iB: 16M, 16MB and 16MiB
// alike), in any case. It takes any count an int64 holds; a narrower
// bound is its flag's or field's, said by name there. Its errors say why
// in words, without the value: the caller names the flag or element.
func ParseSize(v string) (int64, error) {
	num := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(v), "B"), "I")
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			mult, num = u.bytes, strings.TrimSuffix(num, u.suffix)
			break
		}
	}
	if strings.HasPrefix(num, "-") {
		return 0, errors.New("a size must not be negative")
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if errors.Is(err, strconv.ErrRange) || err == nil && n > math.MaxInt64/uint64(mult) {
		return 0, fmt.Errorf("too large: a size is at most %d bytes (8E less one)", int64(math.MaxInt64))
	}
	if err != nil {
		return 0, errors.New("want a size in bytes, or with a K, M, G or T suffix (powers of 1024), such as 8388608, 512K, 16M or 4G")
	}
	return int64(n) * mult, nil
}
