package bench

import (
	"fmt"
	"io"
	"slices"
)

// vmCommandUsage is the -h of each of VMCommand's command lines.
var vmCommandUsage = map[string]string{
	GuestCommand: `usage: imp2-bench ` + GuestCommand + ` JOBFILE

The sweep inside the qemu VM: imp2-bench run -vm (and matrix, ab) boots the VM
with this command line and a job file it writes, then reads the results back.
Not for typing on a host.

exit status:
0 success; 1 failure; 2 bad usage; 130 interrupted.
`,
	GateConsumerCommand: `usage: imp2-bench ` + GateConsumerCommand + ` NETNS | -protocol

The gate's draining consumer, inside the VM: imp2-bench gate starts it in the
network namespace NETNS, where it opens an imp2 consumer, writes "port N", and
answers each line on stdin with "cpu NS EVENTS" until stdin ends. -protocol
prints the protocol it speaks, which the gate checks a base revision's binary
for. Not for typing on a host.

exit status:
0 success; 1 failure; 2 bad usage; 130 interrupted.
`,
}

// isHelp reports whether arg asks for help as package cli's flags do.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// VMCommand runs the command line args when it is one the harness starts
// in the VM, and reports whether it was: `GuestCommand JOB` (Guest) or
// `GateConsumerCommand NETNS` (GateConsumer, on stdin and stdout), whose
// argument lists the harness writes; `GateConsumerCommand -protocol`
// prints GateConsumerProtocol, which the host asks a base revision's
// binary for. Both ends of these command lines are this package's, so an
// imp2-bench hands its arguments here before parsing its own; users never
// type them, but -h (-help, --help) answers as every imp2 command's does
// (internal/cli): the usage on stdout and ExitOK. The status is one of
// Exit*; a mistake is ExitUsage with one line on stderr.
func VMCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 || args[0] != GuestCommand && args[0] != GateConsumerCommand {
		return 0, false
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "imp2-bench %s: %v\n", args[0], err)
		return ExitCode(err)
	}
	switch {
	case slices.ContainsFunc(args[1:], isHelp):
		fmt.Fprint(stdout, vmCommandUsage[args[0]])
		return ExitOK, true
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
