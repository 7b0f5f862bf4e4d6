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

// Exit status: bench.ExitCode's, and the verdict's for compare, ab and gate.
const (
	exitOK, exitFailure, exitUsage, exitInterrupted = bench.ExitOK, bench.ExitFailure, bench.ExitUsage, bench.ExitInterrupted

	exitsPlain   = "0 success; 1 failure; 2 bad usage."
	exitsSweep   = "0 success; 1 failure; 2 bad usage; 130 interrupted (SIGINT or SIGTERM: the samples\nthat completed are written, marked partial)."
	exitsVerdict = "0 no regression; 1 regression; 2 unusable input (unreadable, schema mismatch, a\npartial run, other sources, too few samples to decide: a one-line reason) or bad\nusage; 3 the -plot figure could not be drawn (after the verdict)"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return cli.New("imp2-bench", "imp2-bench COMMAND [flags] [ARGS]", `
Load-test the imp2 kernel→user netlink path (ICMP floods through the hooked path,
delivery, drops, queue occupancy, latency), draw the results and judge
regressions. "imp2-bench COMMAND -h" (or "imp2-bench help COMMAND") describes a
command.`, exitsSweep+"\n\ncompare, ab and gate: "+exitsVerdict+".").Dispatch(args, []cli.Sub{
		{Name: "run", Summary: "run a sweep and write a result directory", Run: runCmd},
		{Name: "plot", Summary: "draw the plots of a result directory again", Run: plotCmd},
		{Name: "compare", Summary: "regression verdict between two runs", Run: compareCmd},
		{Name: "ab", Summary: "two module builds benchmarked interleaved in one VM, then compared", Run: abCmd},
		{Name: "gate", Summary: "CI gate: base's module and consumer against this one's, in the VM", Run: gateCmd},
		{Name: "matrix", Summary: "run's sweep in the VM on each matrix kernel, and their report", Run: matrixCmd},
		{Name: "merge", Summary: "the cross-kernel report of result directories, one per kernel", Run: mergeCmd},
		{Name: bench.GuestCommand, Summary: "inside the VM only: the sweep of the job file run -vm and ab wrote", Run: guestCmd},
		{Name: bench.GateConsumerCommand, Summary: "inside the VM only: the gate's draining consumer", Run: gateConsumerCmd},
	}, stdout, stderr)
}

// exitFor reports err in one line and returns its exit status
// (bench.ExitCode): unusable input its reason, an option out of range
// its flag (the field's name).
func exitFor(stderr io.Writer, prefix string, err error) int {
	var oe *bench.OptionError
	switch {
	case errors.Is(err, compare.ErrUnusable):
		_, reason := compare.ExitStatus(nil, err)
		fmt.Fprintf(stderr, "exit %d: %s\n", bench.ExitCode(err), reason)
	case errors.As(err, &oe):
		fmt.Fprintf(stderr, "%s -%s%s\n", prefix, strings.ToLower(oe.Field), oe.Msg)
	default:
		fmt.Fprintln(stderr, prefix, err)
	}
	return bench.ExitCode(err)
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
