package cli

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func testCommand() (*Command, *time.Duration, *string) {
	c := New("imp2-test", "imp2-test -o PATH [flags] [TRACE]", "Tests the conventions.", "0 done; 2 usage.")
	c.Habits = map[string]string{"w": Like("o", "tcpdump's -w")}
	var d time.Duration
	DurationVar(c.Flags, &d, "duration", 0, "stop after this long")
	out := c.Flags.String("o", "", "output `PATH`")
	c.Flags.Int("count", 0, "stop after N frames")
	c.Flags.Int("snaplen", 1500, "snapshot length")
	c.Flags.Float64("speed", 1, "speed factor")
	c.Flags.Bool("quiet", false, "say less")
	return c, &d, out
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		c, _, _ := testCommand()
		var o, e bytes.Buffer
		if _, code, ok := c.Parse([]string{"-o", "x", arg}, &o, &e); ok || code != ExitOK || e.Len() != 0 {
			t.Fatalf("%s: ok %v code %d stderr %q", arg, ok, code, e.String())
		}
		for _, want := range []string{"usage: imp2-test -o PATH", "Tests the conventions.", "\n  -o PATH\n", "  -duration duration\n",
			"(default 1500)", "  -version\n", "exit status:\n0 done; 2 usage."} {
			if !strings.Contains(o.String(), want) {
				t.Errorf("%s: help lacks %q:\n%s", arg, want, o.String())
			}
		}
	}
}

func TestUnknownFlag(t *testing.T) {
	for _, c := range []struct{ arg, want string }{
		{"-w", "imp2-test: unknown flag -w: did you mean -o (tcpdump's -w)?\n"},
		{"-durration", "imp2-test: unknown flag -durration: did you mean -duration?\n"},
		{"-cuont", "imp2-test: unknown flag -cuont: did you mean -count?\n"},
		{"-snap", "imp2-test: unknown flag -snap: did you mean -snaplen?\n"},
		{"--versoin", "imp2-test: unknown flag -versoin: did you mean -version?\n"},
		{"-zzz", "imp2-test: unknown flag -zzz (imp2-test -h lists the flags)\n"},
		{"-K", "imp2-test: unknown flag -K (imp2-test -h lists the flags)\n"},
		{"-count=x", `imp2-test: invalid value "x" for flag -count: want a whole number` + "\n"},
		{"-speed=fast", `imp2-test: invalid value "fast" for flag -speed: want a number` + "\n"},
		{"-quiet=maybe", `imp2-test: invalid boolean value "maybe" for -quiet: want true or false` + "\n"},
		{"-duration=fast", `imp2-test: invalid value "fast" for flag -duration: want a duration such as 5s, 250ms or 1m30s, or a number of seconds` + "\n"},
	} {
		cmd, _, _ := testCommand()
		var o, e bytes.Buffer
		if _, code, ok := cmd.Parse([]string{"x.pcapng", c.arg}, &o, &e); ok || code != ExitUsage || e.String() != c.want || o.Len() != 0 {
			t.Errorf("%s: ok %v code %d stdout %q stderr %q; want exit 2 and %q", c.arg, ok, code, o.String(), e.String(), c.want)
		}
	}
}

func TestInterleaved(t *testing.T) {
	c, d, out := testCommand()
	var o, e bytes.Buffer
	pos, _, ok := c.Parse([]string{"a", "-o", "y", "b", "-duration", "2.5", "--", "-c", "d"}, &o, &e)
	if !ok || strings.Join(pos, " ") != "a b -c d" || *out != "y" || *d != 2500*time.Millisecond || strings.Join(c.FlagArgs, " ") != "-o y -duration 2.5" {
		t.Errorf("pos %q, flags %q, -o %q, -duration %v, ok %v, stderr %q", pos, c.FlagArgs, *out, *d, ok, e.String())
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "0.25": 250 * time.Millisecond, "0": 0,
		"1m30s": 90 * time.Second, "-1": -time.Second, "250ms": 250 * time.Millisecond} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5x", "1e300", "NaN"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestVersionString(t *testing.T) {
	rev := "22981bf2c12fa5d5f9299b909b90b3106f021358"
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{}, "(devel)"},
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}},
			"(devel) revision " + rev},
		{debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202031000-22981bf2c12f+dirty"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			"v0.0.0-20261202031000-22981bf2c12f+dirty revision " + rev + " dirty"},
	} {
		if got := version(&c.bi); got != c.want {
			t.Errorf("%+v: %q; want %q", c.bi, got, c.want)
		}
	}
}

// TestVersionInTestBinary: what the toolchain stamps into a test binary,
// which has no VCS settings: the "(devel)" rule.
func TestVersionInTestBinary(t *testing.T) {
	if v := Version(); !strings.HasPrefix(v, "(devel)") || strings.Contains(v, "revision") {
		t.Errorf("Version() in a test binary = %q; want (devel) and no revision", v)
	}
}

func TestDispatch(t *testing.T) {
	var ran []string
	sub := func(name string, code int) Sub {
		return Sub{Name: name, Summary: name + " it", Usage: "imp2-top " + name + " [ARG]", MaxArgs: 1, Setup: func(c *Command) func([]string) error {
			x := c.Flags.Bool("x", false, "x it")
			return func(args []string) error {
				ran = append(ran, fmt.Sprintf("%s %v %s", c.Name, *x, strings.Join(args, " ")))
				if len(args) > 0 && args[0] == "fail" {
					return errors.New("it failed")
				}
				if code == ExitUsage {
					return Usagef("-x needs an ARG")
				}
				return &Exit{Code: code}
			}
		}}
	}
	subs := []Sub{sub("run", 7), sub("plot", ExitUsage)}
	fail := func(c *Command, err error) int { fmt.Fprintf(c.Stderr, "%s failed: %v\n", c.Name, err); return 1 }
	for _, c := range []struct {
		args         []string
		code         int
		stdout, errs string
		ran          string
	}{
		{[]string{"run", "-x", "y"}, 7, "", "", "imp2-top run true y"},
		{[]string{"run", "fail"}, 1, "", "imp2-top run failed: it failed\n", "imp2-top run false fail"},
		{[]string{"plot"}, 2, "", "imp2-top plot: -x needs an ARG\n", "imp2-top plot false "},
		{[]string{"plot", "a", "b"}, 2, "", "imp2-top plot: got 2 arguments (usage: imp2-top plot [ARG])\n", ""},
		{[]string{"help", "plot"}, 0, "usage: imp2-top plot [ARG]\n", "", ""},
		{[]string{"-h"}, 0, "commands:\n  run      run it\n  plot     plot it\n", "", ""},
		{[]string{"help"}, 0, "usage: imp2-top COMMAND", "", ""},
		{nil, 2, "", "imp2-top: no command (imp2-top -h lists them)\n", ""},
		{[]string{"rnu"}, 2, "", "imp2-top: unknown command \"rnu\": did you mean run? (imp2-top -h lists them)\n", ""},
		{[]string{"-verbose", "run"}, 2, "", "imp2-top: unknown flag -verbose (imp2-top -h lists the flags)\n", ""},
	} {
		ran = nil
		top := New("imp2-top", "imp2-top COMMAND [flags]", "Tops.", "0 ok.")
		var o, e bytes.Buffer
		code := top.Dispatch(c.args, subs, fail, &o, &e)
		if code != c.code || !strings.Contains(o.String(), c.stdout) || e.String() != c.errs || strings.Join(ran, ";") != c.ran {
			t.Errorf("%q: exit %d, stdout %q, stderr %q, ran %q; want %d, %q, %q, %q", c.args, code, o.String(), e.String(), ran, c.code, c.stdout, c.errs, c.ran)
		}
	}
}

// TestRanges: an integer flag out of its range and a negative duration
// are refused as they are parsed, naming the flag; the range is in -h.
func TestRanges(t *testing.T) {
	for _, c := range []struct{ arg, want string }{
		{"-batch=0", `invalid value "0" for flag -batch: want 1 to 1024`},
		{"-batch=1025", `invalid value "1025" for flag -batch: want 1 to 1024`},
		{"-batch=x", `invalid value "x" for flag -batch: want a whole number`},
		{"-limit=-1", `invalid value "-1" for flag -limit: want at least 0`},
		{"-limit=99999999999999999999", `invalid value "99999999999999999999" for flag -limit: want a whole number`},
		{"-wait=-1", `invalid value "-1" for flag -wait: want 0 or more`},
	} {
		cmd := New("imp2-test", "imp2-test", "Ranges.", "0 done.")
		var batch int
		var limit int64
		var wait time.Duration
		IntVar(cmd.Flags, &batch, "batch", 64, 1, 1024, "frames per send")
		IntVar(cmd.Flags, &limit, "limit", 0, 0, NoMax, "stop after N")
		DurationVar(cmd.Flags, &wait, "wait", time.Second, "wait this long")
		var o, e bytes.Buffer
		if _, code, ok := cmd.Parse([]string{c.arg}, &o, &e); ok || code != ExitUsage || e.String() != "imp2-test: "+c.want+"\n" {
			t.Errorf("%s: ok %v exit %d, %q; want %q", c.arg, ok, code, e.String(), c.want)
		}
		if batch != 64 || limit != 0 || wait != time.Second {
			t.Errorf("%s: a refused value was stored: %d %d %v", c.arg, batch, limit, wait)
		}
		if _, _, ok := cmd.Parse([]string{"-batch", "1024", "-limit", "5000000000", "-wait", "0"}, &o, &e); !ok || batch != 1024 || limit != 5000000000 || wait != 0 {
			t.Errorf("the bounds themselves: ok %v, %d %d %v", ok, batch, limit, wait)
		}
		var h bytes.Buffer
		cmd.Help(&h)
		if !strings.Contains(h.String(), "  -batch int\n") || !strings.Contains(h.String(), "(default 64)") {
			t.Errorf("help:\n%s", h.String())
		}
	}
}

// TestHelpWidth: flag descriptions are wrapped to Width at spaces with
// their default, and the description and exit codes are filled to it
// whatever their line breaks; the notes are written as they are.
func TestHelpWidth(t *testing.T) {
	c := New("imp2-test", "imp2-test [flags]", strings.Repeat("a description word\n", 12), strings.Repeat("0 done; 2 usage; ", 8))
	c.Notes = "Notes:\n  a table row  kept as written"
	c.Flags.Int("snaplen", 1500, strings.Repeat("receive buffer per datagram in bytes ", 4))
	var o bytes.Buffer
	c.Help(&o)
	for _, line := range strings.Split(o.String(), "\n") {
		if n := len(strings.ReplaceAll(line, "\t", "    ")); n > Width {
			t.Errorf("a line of %d columns:\n%s", n, line)
		}
	}
	for _, want := range []string{"\n    \treceive buffer per datagram in bytes receive buffer per datagram in\n",
		"\n    \tin bytes (default 1500)\n", "\n  a table row  kept as written\n", "\na description word a description word"} {
		if !strings.Contains(o.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, o.String())
		}
	}
}
