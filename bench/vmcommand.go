package bench

import (
	"fmt"
	"io"
)

// VMCommand runs the command line args when it is one the harness starts
// in the VM, and reports whether it was: `GuestCommand JOB` (Guest) or
// `GateConsumerCommand NETNS` (GateConsumer, on stdin and stdout), whose
// argument lists the harness writes; `GateConsumerCommand -protocol`
// prints GateConsumerProtocol, which the host asks a base revision's
// binary for. Both ends of these command lines are this package's, so an
// imp2-bench hands its arguments here before parsing its own; users never
// type them. The status is one of Exit*; a mistake is ExitUsage with one
// line on stderr.
func VMCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 || args[0] != GuestCommand && args[0] != GateConsumerCommand {
		return 0, false
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "imp2-bench %s: %v\n", args[0], err)
		return ExitCode(err)
	}
	switch {
	case len(args) != 2:
		want := "network namespace's name"
		if args[0] == GuestCommand {
			want = "job file"
		}
		fmt.Fprintf(stderr, "imp2-bench %s: want one argument, the %s\n", args[0], want)
		return ExitUsage, true
	case args[0] == GateConsumerCommand && args[1] == "-protocol":
		fmt.Fprintln(stdout, GateConsumerProtocol)
		return ExitOK, true
	}
	ctx, _, stop := NotifyInterrupts()
	defer stop()
	if args[0] == GateConsumerCommand {
		if err := GateConsumer(ctx, args[1], stdin, stdout); err != nil {
			return fail(err), true
		}
		return ExitOK, true
	}
	partial, err := Guest(ctx, args[1], stderr)
	switch {
	case err != nil:
		return fail(err), true
	case partial:
		return ExitInterrupted, true
	}
	return ExitOK, true
}
