// Command imp2-bench load-tests the imp2 kernel→user netlink path: ICMP
// floods through the hooked path, unicast latency, drops under
// MSG_DONTWAIT, receive-queue behaviour, plots, and regression comparison.
// The measuring and judging are package bench's; this is its command
// line, one cli.Sub per subcommand (flags → options → engine), with
// package cli's conventions for -h, -version and mistakes.
package main

import (
	"context"
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
	if code, ok := bench.VMCommand(args, os.Stdin, stdout, stderr); ok {
		return code // the harness's own command lines, inside the VM
	}
	return cli.New("imp2-bench", "imp2-bench COMMAND [flags] [ARGS]", `
Load-test the imp2 kernel→user netlink path (ICMP floods through the hooked path,
delivery, drops, queue occupancy, latency), draw the results and judge
regressions. "imp2-bench COMMAND -h" (or "imp2-bench help COMMAND") describes a
command.`, exitsSweep+"\n\ncompare, ab and gate: "+exitsVerdict+".").Dispatch(args, []cli.Sub{
		runSub, plotSub, compareSub, abSub, gateSub, matrixSub, mergeSub,
	}, fail, stdout, stderr)
}

// fail reports err in one line, after the command's name as every
// imp2-bench error, and returns its exit status (bench.ExitCode):
// unusable input its status and reason ("imp2-bench compare: exit 2:
// unusable input: …", the status said as a verdict's last line says it),
// an option out of range its flag (the field's name).
func fail(c *cli.Command, err error) int {
	var oe *bench.OptionError
	switch {
	case errors.Is(err, compare.ErrUnusable):
		_, reason := compare.ExitStatus(nil, err)
		fmt.Fprintf(c.Stderr, "%s: exit %d: %s\n", c.Name, bench.ExitCode(err), reason)
	case errors.As(err, &oe):
		fmt.Fprintf(c.Stderr, "%s: %s\n", c.Name, oe.Named(flagName))
	default:
		fmt.Fprintf(c.Stderr, "%s: %v\n", c.Name, err)
	}
	return bench.ExitCode(err)
}

// flagName is the flag of a field of the engine's options.
func flagName(field string) string { return "-" + strings.ToLower(field) }

// startSweep notes first when compare could not judge so few samples,
// then sets o to stop on SIGINT and SIGTERM (bench.NotifyInterrupts).
func startSweep(c *cli.Command, o *bench.Options) (context.Context, func()) {
	if oe := o.FewReps(); oe != nil {
		fmt.Fprintf(c.Stderr, "%s: note: %s\n", c.Name, oe.Named(flagName))
	}
	ctx, hard, stop := bench.NotifyInterrupts()
	o.Hard = hard
	return ctx, stop
}

// interrupted is the outcome of a command stopped by a signal.
func interrupted(msg string) error { return &cli.Exit{Code: exitInterrupted, Msg: msg} }

var plotSub = cli.Sub{Name: "plot", Summary: "draw the plots of a result directory again",
	Usage: "imp2-bench plot DIR|results.json", MinArgs: 1, MaxArgs: 1, Exits: exitsPlain, Description: `
Draw the plots of a result directory (the argument, or the directory of the
results.json it names) again, into its plots/ folder, and list the files.`,
	Setup: func(c *cli.Command) func([]string) error {
		return func(args []string) error {
			files, err := bench.Replot(args[0])
			for _, f := range files {
				fmt.Fprintln(c.Stdout, f)
			}
			return err
		}
	}}
