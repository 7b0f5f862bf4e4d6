package main

import (
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/cli/clitest"
)

// TestCommandLine: imp2-bench and each of its subcommands keep package
// cli's conventions: -h on stdout with exit 0 and their own usage, one
// line and exit 2 for a mistaken flag or command, -version, durations in
// bare seconds.
func TestCommandLine(t *testing.T) {
	bin := buildBench(t)
	clitest.Help(t, bin, "imp2-bench COMMAND")
	clitest.Version(t, bin)
	clitest.Mistake(t, bin, `unknown command "rnu": did you mean run?`, "rnu")
	clitest.Mistake(t, bin, "no command", nil...)
	if r := clitest.Run(t, bin, "help", "ab"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "usage: imp2-bench ab ") {
		t.Errorf("help ab: exit %d, %q", r.Code, r.Stdout)
	}
	for _, c := range []struct {
		sub, usage, mistake, want string
	}{
		{"run", "imp2-bench run [flags]", "-rate", "unknown flag -rate: did you mean -rates?"},
		{"plot", "imp2-bench plot DIR", "-out", "unknown flag -out (imp2-bench plot -h lists the flags)"},
		{"compare", "imp2-bench compare [flags] BASE NEW", "-jsno", "did you mean -json?"},
		{"ab", "imp2-bench ab [-base REV|FILE.ko]", "-baes", "did you mean -base?"},
		{"gate", "imp2-bench gate [flags]", "-baseine", "did you mean -baseline?"},
		{"matrix", "imp2-bench matrix [-kernels all|LIST]", "-kernel", "did you mean -kernels (matrix runs every sweep in the VM"},
		{"merge", "imp2-bench merge -out DIR RESULTDIR...", "-o", "unknown flag -o: did you mean -out?"},
	} {
		clitest.Help(t, bin, c.usage, c.sub)
		clitest.Version(t, bin, c.sub)
		clitest.Mistake(t, bin, c.want, c.sub, c.mistake, "1")
	}
	// Positional counts: one line naming the usage.
	clitest.Mistake(t, bin, "got 0 arguments (usage: imp2-bench plot DIR|results.json)", "plot")
	clitest.Mistake(t, bin, "got 1 argument (usage: imp2-bench compare [flags] BASE NEW)", "compare", "x")
	clitest.Mistake(t, bin, `unexpected argument "x" (usage: imp2-bench run [flags])`, "run", "x")
	// A bare number is seconds: -duration 700 is 700s, beyond the 10m a
	// sample may flood, and -duration 0.5 passes (stopped by -reps 0).
	clitest.Mistake(t, bin, "-duration 11m40s: want more than 0 and at most 10m", "run", "-duration", "700")
	clitest.Mistake(t, bin, "-reps 0: want at least 1", "run", "-duration", "0.5", "-reps", "0")
	clitest.Mistake(t, bin, "-duration 5ms: a sample at 1000 packets/s would flood 5 packet(s), fewer than 10: want at least 10ms", "run", "-duration", "5ms", "-rates", "4000,1000")
	clitest.Mistake(t, bin, "-duration 11m40s", "ab", "-duration", "700")
	// -alpha 0 is no default on the command line (it is in the Go API):
	// refused as the flag is parsed, as any value outside 0 < alpha < 0.5.
	for _, a := range []string{"0", "0.5", "-0.01", "NaN"} {
		clitest.Mistake(t, bin, `invalid value "`+a+`" for flag -alpha: want 0 < alpha < 0.5`, "compare", "-alpha", a, "a", "b")
	}
	clitest.Mistake(t, bin, `invalid value "0" for flag -alpha: want 0 < alpha < 0.5`, "ab", "-alpha", "0")
	// -trace-frames is a count; -qthresh is nflog's, refused for another
	// source and not an ab flag (ab always runs the module).
	clitest.Mistake(t, bin, `invalid value "-1" for flag -trace-frames: want at least 0`, "run", "-trace-frames", "-1")
	clitest.Mistake(t, bin, "-qthresh is nflog's (packets per netlink message); -source kmod ignores it", "run", "-qthresh", "5")
	clitest.Mistake(t, bin, "-qthresh is nflog's (packets per netlink message); -source emu ignores it", "run", "-source", "emu", "-qthresh", "1")
	clitest.Mistake(t, bin, "-qthresh is nflog's (packets per netlink message); -source bpf ignores it", "matrix", "-source", "bpf", "-qthresh", "5")
	clitest.Mistake(t, bin, "unknown flag -qthresh: ab always runs the module (kmod)", "ab", "-qthresh", "5")
	if r := clitest.Run(t, bin, "ab", "-h"); strings.Contains(r.Stdout, "-qthresh") {
		t.Errorf("ab -h lists -qthresh, which ab (always kmod) has no use for:\n%s", r.Stdout)
	}
	// An unknown kernel is a usage error as the flag is parsed, before
	// any VM boots, in run as in matrix.
	clitest.Mistake(t, bin, `invalid value "9.9" for flag -kernel: no kernel "9.9" in the matrix: want one of 6.1, 6.12`, "run", "-vm", "-kernel", "9.9")
	clitest.Mistake(t, bin, `-kernels 9.9: no kernel "9.9" in the matrix`, "matrix", "-kernels", "9.9")
	// A default that depends on the time is said as a pattern, not as
	// the time -h ran.
	if r := clitest.Run(t, bin, "ab", "-h"); !strings.Contains(r.Stdout, "(default results/ab-<time>)") {
		t.Errorf("ab -h: -out's default is not results/ab-<time>:\n%s", r.Stdout)
	}
}
