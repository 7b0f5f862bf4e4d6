package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/cli/clitest"
)

// TestCommandLine: imp2-replay keeps package cli's conventions: -h on
// stdout (with the outputs and the filter syntax) and exit 0, one line and
// exit 2 for a mistaken flag (once, not twice, and never the usage) with
// the nearest flag or the tcpreplay/tcpdump habit it looks like,
// -version, a plain argument as the input, durations in bare seconds.
func TestCommandLine(t *testing.T) {
	clitest.Help(t, replayBin, "imp2-replay ")
	if r := clitest.Run(t, replayBin, "-h"); !strings.Contains(r.Stdout, "Outputs (-to):") || !strings.Contains(r.Stdout, "\nFilter syntax:") {
		t.Errorf("-h lacks the outputs or the filter syntax:\n%s", r.Stdout)
	}
	clitest.Version(t, replayBin)
	for flag, want := range map[string]string{
		"-x": "unknown flag -x: did you mean -speed (tcpreplay's -x)?", "-multiplier": "did you mean -speed (tcpreplay's --multiplier)?",
		"-t": "did you mean -topspeed (tcpreplay's -t)?", "-l": "did you mean -loop (tcpreplay's -l)?", "-L": "did you mean -limit (tcpreplay's -L)?",
		"-r": "did you mean -i (tcpdump's -r", "-w": "did you mean -o (tcpdump's -w, with -to pcapng)?", "-M": "-pps sets frames per second",
		"--intf1": "not out of an interface", "-topsped": "unknown flag -topsped: did you mean -topspeed?",
		"-K": "keeps the trace in memory for -loop (tcpreplay's -K)",
	} {
		clitest.Mistake(t, replayBin, want, "x.pcapng", flag, "1")
	}
	// A value out of range is named by its flag, not by the engine's field.
	for _, c := range []struct{ args, want string }{
		{"-speed -1", "-speed must be positive"}, {"-speed 0", "-speed must be positive"},
		{"-speed Inf", "-speed must be a finite number"}, {"-speed NaN", "-speed must be a finite number"},
		{"-pps NaN", "-pps must be a finite number"}, {"-pps +Inf", "-pps must be a finite number"},
		{"-speed 1e-300", "-speed must be at least 1e-09"}, {"-pps 1e-9", "-pps must be at least 1e-06"},
		{"-pps 5 -loop -2", `imp2-replay: invalid value "-2" for flag -loop: want at least 0`}, {"-pps -5", "-pps cannot be negative"},
		{"-batch 0", `invalid value "0" for flag -batch: want 1 to 1024`}, {"-rt 100", `invalid value "100" for flag -rt: want 0 to 99`},
		{"-limit -3", `invalid value "-3" for flag -limit: want at least 0`}, {"-max-consumers 0", `invalid value "0" for flag -max-consumers: want at least 1`},
		{"-linger -1", `invalid value "-1" for flag -linger: want 0 or more`},
		{"-family -1", `invalid value "-1" for flag -family: want 0 to 31`}, {"-family 99", `invalid value "99" for flag -family: want 0 to 31`},
		{"-to icmp -verify -verify-wait 0", "-verify-wait must be positive"},
		{"-to icmp -verify -verify-rcvbuf 4G", "-verify-rcvbuf must be at most 1073741823 bytes"},
	} {
		clitest.Mistake(t, replayBin, c.want, append([]string{"-to", "text", "x.pcapng"}, strings.Fields(c.args)...)...)
	}
	// A flag that does nothing with the output is refused, not ignored
	// (-o with the default -to netlink waited for a consumer).
	for _, c := range []struct{ args, want string }{
		{"-o x.txt", "-o is for -to text, json or pcapng (-to netlink writes no file)"},
		{"-to icmp -o x.txt", "-o is for -to text, json or pcapng (-to icmp writes no file)"},
		{"-to text -bind 5", "-bind is for -to netlink, not for a file output (-to text)"},
		{"-to json -dest 5", "-dest is for -to netlink, not for a file output (-to json)"},
		{"-to pcapng -o y.pcapng -linger 1s", "-linger is for -to netlink, not for a file output (-to pcapng)"},
		{"-to text -min-consumers 2", "-min-consumers is for -to netlink and icmp, not for a file output (-to text)"},
		{"-to text -wait 1s", "-wait is for -to netlink and icmp, not for a file output (-to text)"},
	} {
		clitest.Mistake(t, replayBin, c.want, append([]string{"x.pcapng"}, strings.Fields(c.args)...)...)
	}
}

// TestPlainArgumentsAndDurations: a plain argument is the input ("-" is
// stdin), flags may follow it, tcpreplay's long flags that we have under
// the same name work, and durations take bare seconds.
func TestPlainArgumentsAndDurations(t *testing.T) {
	in := text2pcapTrace(t)
	for _, args := range [][]string{{"--pps", "1000"}, {"--loop", "2"}, {"--stats", "5"}, {"--topspeed"}} {
		if r := clitest.Run(t, replayBin, append([]string{"-to", "text", in}, args...)...); r.Code != 0 {
			t.Errorf("%q: exit %d: %s", args, r.Code, r.Stderr)
		}
	}
	// A plain argument is the input, with flags before or after it.
	for _, args := range [][]string{{in, "-to", "text"}, {"-to", "text", in}, {"-to", "text", "-i", in}} {
		r := clitest.Run(t, replayBin, args...)
		if r.Code != 0 || strings.Count(r.Stdout, "\n") != 5 || !strings.Contains(r.Stderr, "wrote 5 frames") {
			t.Errorf("%q: exit %d, %d lines, stderr %q; want the 5 frames", args, r.Code, strings.Count(r.Stdout, "\n"), r.Stderr)
		}
	}
	cmd := exec.Command(replayBin, "-to", "text", "-")
	cmd.Stdin, _ = os.Open(in)
	if out, err := cmd.Output(); err != nil || strings.Count(string(out), "\n") != 5 {
		t.Errorf("imp2-replay -to text - < trace: %v, %q", err, out)
	}
	// -q: no text summary, as imp2-record -q; -json's summary stays.
	if r := clitest.Run(t, replayBin, "-q", "-to", "text", in); r.Code != 0 || strings.Count(r.Stdout, "\n") != 5 || r.Stderr != "" {
		t.Errorf("-q: exit %d, %d lines, stderr %q; want the 5 frames and nothing else", r.Code, strings.Count(r.Stdout, "\n"), r.Stderr)
	}
	if r := clitest.Run(t, replayBin, "-q", "-json", "-to", "text", "-o", "/dev/null", in); r.Code != 0 || !strings.Contains(r.Stdout, `"type":"summary"`) {
		t.Errorf("-q -json: exit %d, stdout %q; want the JSON summary", r.Code, r.Stdout)
	}
	// Durations take bare seconds: -duration 0.05 of an endless loop at
	// 1000 frames/s stops it after about 50 frames (bounds wide enough for
	// a starved pacer on a loaded host: what is tested is the parse).
	r := clitest.Run(t, replayBin, "-to", "text", "-realtime", "-pps", "1000", "-loop", "0", "-duration", "0.05", "-stats", "0.02", "-json", in)
	if r.Code != 0 || strings.Count(r.Stdout, "\n") < 1 || strings.Count(r.Stdout, "\n") > 2000 || !strings.Contains(r.Stderr, `"elapsed_s"`) {
		t.Errorf("-duration 0.05 -stats 0.02: exit %d, %d frames, stderr %q", r.Code, strings.Count(r.Stdout, "\n"), r.Stderr)
	}
	clitest.Mistake(t, replayBin, `invalid value "5x" for flag -stats: want a duration such as 5s, 250ms or 1m30s, or a number of seconds`, in, "-stats", "5x")
	// Byte counts take imp2-record's K/M/G suffixes.
	if r := clitest.Run(t, replayBin, "-to", "text", "-readahead", "1M", in); r.Code != 0 || strings.Count(r.Stdout, "\n") != 5 {
		t.Errorf("-readahead 1M: exit %d, stderr %q", r.Code, r.Stderr)
	}
	clitest.Mistake(t, replayBin, `invalid value "lots" for flag -readahead: want a size in bytes`, in, "-readahead", "lots")
}
