package record

import (
	"errors"
	"strings"
	"testing"

	"github.com/imp2/imp2/imp2"
)

func TestSizeSet(t *testing.T) {
	const tooLarge = "too large: a size is at most 9223372036854775807 bytes"
	const garbage = "want a size in bytes, or with a K, M, G or T suffix"
	for _, c := range []struct {
		in      string
		want    Size
		wantErr string
	}{
		{"0", 0, ""},
		{"8388608", 8 << 20, ""},
		{"512K", 512 << 10, ""},
		{"512k", 512 << 10, ""},
		{"16M", 16 << 20, ""},
		{"16MB", 16 << 20, ""},
		{"16MiB", 16 << 20, ""},
		{"16mib", 16 << 20, ""},
		{"100B", 100, ""},
		{"2047M", 2047 << 20, ""},
		{"2G", 2 << 30, ""},
		{"4G", 4 << 30, ""},
		{"10G", 10 << 30, ""},
		{"10GB", 10 << 30, ""},
		{"1T", 1 << 40, ""},
		{"1TiB", 1 << 40, ""},
		{"8388607T", 8388607 << 40, ""},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"8388608T", 0, tooLarge},
		{"9223372036854775808", 0, tooLarge},
		{"99999999999999999999", 0, tooLarge},
		{"9007199254740992K", 0, tooLarge},
		{"-1", 0, "a size must not be negative"},
		{"-4G", 0, "a size must not be negative"},
		{"", 0, garbage},
		{"lots", 0, garbage},
		{"1.5G", 0, garbage},
		{"4X", 0, garbage},
		{"G", 0, garbage},
		{"+4G", 0, garbage},
		{" 4G", 0, garbage},
		{"4GG", 0, garbage},
	} {
		s := Size(-7) // a failed Set leaves it as it was
		err := s.Set(c.in)
		switch {
		case c.wantErr == "" && (err != nil || s != c.want):
			t.Errorf("Set(%q) = %d, %v; want %d", c.in, s, err, c.want)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || s != -7):
			t.Errorf("Set(%q) = %d, %v; want the error %q and the size untouched", c.in, s, err, c.wantErr)
		}
	}
}

func TestSizeString(t *testing.T) {
	for _, c := range []struct {
		s    Size
		want string
	}{
		{0, "0"}, {100, "100"}, {4096, "4K"}, {16 << 20, "16M"}, {1536 << 10, "1536K"},
		{4 << 30, "4G"}, {10 << 30, "10G"}, {1 << 40, "1T"}, {3 << 40, "3T"}, {1<<30 - 1, "1073741823"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(c.s), got, c.want)
		}
		var back Size
		if err := back.Set(c.s.String()); err != nil || back != c.s {
			t.Errorf("Set(%q) = %d, %v; want %d back", c.s.String(), back, err, c.s)
		}
	}
}

// TestLargeSizes: a file size is only a count to reach, so -C 4G and
// 10G are valid, while the receive buffer goes to the kernel's int and
// Buffer is memory: each is refused above its own bound, by field name.
func TestLargeSizes(t *testing.T) {
	parse := func(v string) Size {
		var s Size
		if err := s.Set(v); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		set       func(*Options)
		wantField string
	}{
		{func(o *Options) { o.FileSize = parse("4G") }, ""},
		{func(o *Options) { o.FileSize = parse("10G") }, ""},
		{func(o *Options) { o.FileSize = parse("1T") }, ""},
		{func(o *Options) { o.RcvBuf = imp2.MaxRcvBuf }, ""},
		{func(o *Options) { o.RcvBuf = parse("1023M") }, ""},
		{func(o *Options) { o.Buffer = MaxBuffer }, ""},
		{func(o *Options) { o.RcvBuf = parse("4G") }, "RcvBuf"},
		{func(o *Options) { o.RcvBuf = parse("1G") }, "RcvBuf"},
		{func(o *Options) { o.RcvBuf = parse("2G") }, "RcvBuf"},
		{func(o *Options) { o.Buffer = MaxBuffer + 1 }, "Buffer"},
		{func(o *Options) { o.Buffer = parse("4G") }, "Buffer"},
	} {
		o := DefaultOptions("t.pcapng.zst")
		c.set(&o)
		err := o.validate()
		var oe *OptionError
		switch {
		case c.wantField == "" && err != nil:
			t.Errorf("FileSize %d, RcvBuf %d, Buffer %d: %v; want valid", o.FileSize, o.RcvBuf, o.Buffer, err)
		case c.wantField != "" && (!errors.As(err, &oe) || oe.Field != c.wantField || !strings.Contains(err.Error(), "Options."+c.wantField)):
			t.Errorf("FileSize %d, RcvBuf %d, Buffer %d: %v; want an *OptionError naming %s", o.FileSize, o.RcvBuf, o.Buffer, err, c.wantField)
		}
	}
}
