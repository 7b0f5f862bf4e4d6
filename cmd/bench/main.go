// Command imp2-bench load-tests the imp2 kernel→user netlink path: ICMP
// floods through the hooked path, unicast latency, drops under
// MSG_DONTWAIT, receive-queue behaviour, plots, and regression comparison.
// The measuring and judging are package bench's; this is its command line.
//
//	imp2-bench run   [flags]        run a sweep, write a result directory
//	imp2-bench plot  DIR            (re)draw the plots of a result directory
//	imp2-bench compare BASE NEW     regression verdict between two runs
//	imp2-bench ab [flags]           two module builds benchmarked interleaved in one VM, compared
//	imp2-bench gate [flags]         CI gate: a fixed short run against the committed baseline
//	imp2-bench matrix [flags]       run's sweep on every kernel of the matrix, then the cross-kernel report
//	imp2-bench merge -out DIR DIR...  the cross-kernel report of result directories (CI shards)
//
// Exit status: 0 success, 1 failure, 2 bad usage, 130 interrupted (SIGINT
// or SIGTERM: run writes the samples that completed, marked partial; ab
// and gate keep them and give no verdict). compare, ab and gate: 0 no
// regression, 1 regression, 2 unusable input (a partial run is unusable).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/compare"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitInterrupted is the status of a run stopped by SIGINT or SIGTERM
	// (128+SIGINT, as shells and imp2-replay report it), whether or not
	// it had completed samples to write.
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "plot":
		return plotCmd(args[1:], stdout, stderr)
	case "compare":
		return compareCmd(args[1:], stdout, stderr)
	case "gate":
		return gateCmd(args[1:], stdout, stderr)
	case "ab":
		return abCmd(args[1:], stdout, stderr)
	case "matrix":
		return matrixCmd(args[1:], stdout, stderr)
	case "merge":
		return mergeCmd(args[1:], stdout, stderr)
	case bench.GuestCommand: // inside the VM, started by run -vm and ab
		return guestCmd(args[1:], stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "imp2-bench: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  imp2-bench run [flags]   run a sweep and write a result directory (run -h for flags)
  imp2-bench plot DIR      draw the plots of a result directory again
  imp2-bench compare [flags] BASE NEW
                           regression verdict between two runs (exit 0 same, 1 regression, 2 unusable)
  imp2-bench ab [-base REV|FILE.ko] [-new FILE.ko] [flags]
                           two module builds benchmarked interleaved in one VM, then compared
  imp2-bench gate [flags]  CI gate: the baseline's sweep again, compared with results/ci-baseline
  imp2-bench matrix [-kernels all|LIST] [-out DIR] [run flags]
                           run's sweep in the VM on each matrix kernel (DIR/KERNEL), then the
                           cross-kernel report (DIR/report; default DIR results/matrix)
  imp2-bench merge -out DIR RESULTDIR...
                           the cross-kernel report of result directories, one per kernel
`)
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
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: imp2-bench plot DIR")
		return exitUsage
	}
	files, err := bench.Replot(args[0])
	if err != nil {
		return exitFor(stderr, "imp2-bench:", err)
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return exitOK
}

// guestCmd is `imp2-bench guest JOB` (inside the VM only): the sweep the
// host wrote into the job file.
func guestCmd(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: imp2-bench", bench.GuestCommand, "JOB.json (inside the VM only)")
		return exitUsage
	}
	ctx, _, stop := bench.NotifyInterrupts()
	defer stop()
	if partial, err := bench.Guest(ctx, args[0], stderr); err != nil {
		return exitFor(stderr, "imp2-bench guest:", err)
	} else if partial {
		return exitInterrupted
	}
	return exitOK
}
