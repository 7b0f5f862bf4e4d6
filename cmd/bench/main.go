// Command imp2-bench load-tests the imp2 kernel→user netlink path: ICMP
// floods through the hooked path, unicast latency, drops under
// MSG_DONTWAIT, receive-queue behaviour, plots, and regression comparison.
// The measuring and judging are package bench's; this is its command
// line, one function per subcommand (flags → options → engine → exit
// status), with package cli's conventions for -h, -version and mistakes.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/compare"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = cli.ExitUsage
	// exitInterrupted is the status of a run stopped by SIGINT or SIGTERM
	// (128+SIGINT, as shells and imp2-replay report it), whether or not
	// it had completed samples to write.
	exitInterrupted = 130
)

// The exit statuses of the subcommands, for their -h.
const (
	exitsPlain   = "0 success; 1 failure; 2 bad usage."
	exitsSweep   = "0 success; 1 failure; 2 bad usage; 130 interrupted (SIGINT or SIGTERM: the samples\nthat completed are written, marked partial)."
	exitsVerdict = "0 no regression; 1 regression; 2 unusable input (unreadable, schema mismatch, a partial\nrun, too few samples to decide: a one-line reason) or bad usage"
)

// subcommands in the order -h lists them.
var subcommands = []struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}{
	{"run", "run a sweep and write a result directory", runCmd},
	{"plot", "draw the plots of a result directory again", plotCmd},
	{"compare", "regression verdict between two runs", compareCmd},
	{"ab", "two module builds benchmarked interleaved in one VM, then compared", abCmd},
	{"gate", "CI gate: the baseline's sweep again, compared with results/ci-baseline", gateCmd},
	{"matrix", "run's sweep in the VM on each matrix kernel, then the cross-kernel report", matrixCmd},
	{"merge", "the cross-kernel report of result directories, one per kernel", mergeCmd},
	{bench.GuestCommand, "inside the VM only: the sweep of the job file run -vm and ab wrote", guestCmd},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var list strings.Builder
	names := make([]string, len(subcommands))
	for i, s := range subcommands {
		names[i] = s.name
		fmt.Fprintf(&list, "  %-8s %s\n", s.name, s.summary)
	}
	top := cli.New("imp2-bench", "imp2-bench COMMAND [flags] [ARGS]", `
Load-test the imp2 kernel→user netlink path (ICMP floods through the hooked path,
delivery, drops, queue occupancy, latency), draw the results and judge
regressions. "imp2-bench COMMAND -h" (or "imp2-bench help COMMAND") describes a
command.`, exitsSweep+" compare, ab and gate: "+exitsVerdict+".")
	top.Notes = "commands:\n" + list.String()
	if len(args) > 0 && args[0] == "help" {
		args = append(args[1:], "-h")
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if _, code, ok := top.Parse(args, stdout, stderr); !ok {
			return code
		}
		return top.Fail(stderr, "no command (imp2-bench -h lists them)")
	}
	for _, s := range subcommands {
		if s.name == args[0] {
			return s.run(args[1:], stdout, stderr)
		}
	}
	hint := ""
	if near := cli.Nearest(args[0], names); near != "" {
		hint = ": did you mean " + near + "?"
	}
	return top.Fail(stderr, "unknown command %q%s (imp2-bench -h lists them)", args[0], hint)
}

// exitFor reports err with its exit status: unusable input its one-line
// reason and 2, an option out of range its flag and 2, an interruption
// before anything completed 130, anything else 1.
func exitFor(stderr io.Writer, prefix string, err error) int {
	var oe *bench.OptionError
	switch {
	case errors.Is(err, compare.ErrUnusable):
		code, reason := compare.ExitStatus(nil, err)
		fmt.Fprintf(stderr, "exit %d: %s\n", code, reason)
		return code
	case errors.As(err, &oe): // the flags are the fields' names
		fmt.Fprintf(stderr, "%s -%s%s\n", prefix, strings.ToLower(oe.Field), oe.Msg)
		return exitUsage
	}
	fmt.Fprintln(stderr, prefix, err)
	if errors.Is(err, bench.ErrNothingCompleted) {
		return exitInterrupted
	}
	return exitFailure
}

// plotCmd is `imp2-bench plot DIR`.
func plotCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench plot", "imp2-bench plot DIR|results.json", `
Draw the plots of a result directory (the argument, or the directory of the
results.json it names) again, into its plots/ folder, and list the files.`, exitsPlain)
	pos, code, ok := c.ParseArgs(args, 1, 1, stdout, stderr)
	if !ok {
		return code
	}
	files, err := bench.Replot(pos[0])
	if err != nil {
		return exitFor(stderr, "imp2-bench plot:", err)
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return exitOK
}

// guestCmd is `imp2-bench guest JOB` (inside the VM only): the sweep the
// host wrote into the job file.
func guestCmd(args []string, stdout, stderr io.Writer) int {
	c := cli.New("imp2-bench "+bench.GuestCommand, "imp2-bench "+bench.GuestCommand+" JOB.json", `
Inside the VM only: run the sweep that run -vm, ab or matrix wrote into the
job file on the host, into the share.`, exitsSweep)
	pos, code, ok := c.ParseArgs(args, 1, 1, stdout, stderr)
	if !ok {
		return code
	}
	ctx, _, stop := bench.NotifyInterrupts()
	defer stop()
	if partial, err := bench.Guest(ctx, pos[0], stderr); err != nil {
		return exitFor(stderr, c.Name+":", err)
	} else if partial {
		return exitInterrupted
	}
	return exitOK
}
