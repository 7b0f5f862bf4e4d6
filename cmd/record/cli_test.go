package main

import (
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/cli/clitest"
)

// TestCommandLine: imp2-record keeps package cli's conventions: -h on
// stdout with exit 0, one line and exit 2 for a mistaken flag with the
// nearest flag or the tcpdump habit it looks like, -version, durations in
// bare seconds, and a plain argument refused with the hint for -o.
func TestCommandLine(t *testing.T) {
	clitest.Help(t, recordBin, "imp2-record -o PATH")
	clitest.Version(t, recordBin)
	for flag, want := range map[string]string{
		"-w": "unknown flag -w: did you mean -o (tcpdump's -w)?", "-c": "did you mean -count (tcpdump's -c)?",
		"-s": "did you mean -snaplen (tcpdump's -s)?", "-r": "imp2-replay -i TRACE reads a trace (tcpdump's -r)",
		"-durration": "unknown flag -durration: did you mean -duration?", "-forse": "did you mean -force?",
		"-stats": "imp2-record shows its progress on a terminal", "-n": "unknown flag -n: imp2-record resolves no names",
	} {
		clitest.Mistake(t, recordBin, want, "-o", "x.pcapng", flag, "1")
	}
	clitest.Mistake(t, recordBin, `unexpected argument "x.pcapng": name the output with -o PATH (tcpdump's -w)`, "x.pcapng")
	clitest.Mistake(t, recordBin, `invalid value "soon" for flag -duration: want a duration such as 5s`, "-o", "x", "-duration", "soon")
	// A bare number is seconds: -duration -1 is refused as it is parsed,
	// 2.5 is accepted (the recording then fails to start: no module here).
	clitest.Mistake(t, recordBin, `invalid value "-1" for flag -duration: want 0 or more`, "-o", "x", "-duration", "-1")
	clitest.Mistake(t, recordBin, `-coalesce 20ms: want 0 to 10ms`, "-o", "x", "-coalesce", "20ms")
	if r := clitest.Run(t, recordBin, "-o", "x.pcapng", "-family", "2", "-peer", "3999999999", "-duration", "2.5", "-q"); r.Code != exitStart || strings.Contains(r.Stderr, "-duration") {
		t.Errorf("-duration 2.5: exit %d, %q; want it accepted (exit %d: no peer)", r.Code, r.Stderr, exitStart)
	}
}

// TestVersionInCheckout: built in a git checkout, -version names the
// revision, and "dirty" when the checkout has uncommitted changes.
func TestVersionInCheckout(t *testing.T) {
	for _, dirty := range []bool{false, true} {
		bin, rev := clitest.BuildInCheckout(t, ".", "./cmd/record", "imp2-record", dirty)
		r := clitest.Run(t, bin, "-version")
		if !strings.Contains(r.Stdout, " revision "+rev) || strings.Contains(r.Stdout, " dirty ") != dirty {
			t.Errorf("dirty %v: -version %q; want revision %s", dirty, r.Stdout, rev)
		}
		clitest.Version(t, bin)
	}
}
