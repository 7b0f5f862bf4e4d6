package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Sub is one subcommand of a command made of subcommands (imp2-bench
// run, plot, …), declared rather than written out: Dispatch makes its
// Command, parses its flags and positional arguments, runs it and turns
// its error into the exit status, so that a subcommand is its flags and
// what it does with them.
type Sub struct {
	// Name is the subcommand's name; Summary one line for the parent's -h.
	Name, Summary string
	// Usage, Description and Exits are its -h, as for New; Usage starts
	// with the parent's name.
	Usage, Description, Exits string
	// MinArgs and MaxArgs bound its positional arguments (MaxArgs < 0:
	// any number), as ParseArgs.
	MinArgs, MaxArgs int
	// Setup defines the flags on c (and c.Habits) and returns what runs
	// once they are parsed, given the positional arguments; it writes on
	// c.Stdout and c.Stderr. Its error is the parent's to report (see
	// Dispatch), an *Exit its own status.
	Setup func(c *Command) func(args []string) error
}

// Exit is a subcommand's outcome that is not an error to report: the
// status, and a line to write on stderr ("" when it has said all).
type Exit struct {
	Code int
	Msg  string
}

func (e *Exit) Error() string { return fmt.Sprintf("exit %d: %s", e.Code, e.Msg) }

// Usagef is the *Exit of a command line refused after Parse: ExitUsage
// and the line.
func Usagef(format string, args ...any) error {
	return &Exit{Code: ExitUsage, Msg: fmt.Sprintf(format, args...)}
}

// Dispatch runs the subcommand args[0] names. The parent answers -h (its
// description and the list of subcommands), "help SUB" (SUB's -h) and
// -version itself; no subcommand, an unknown one (with the nearest name)
// or an unknown flag before it is one line and ExitUsage. A subcommand's
// *Exit gives the status (and its line, "NAME: MSG"); any other error
// goes to fail, which writes it and returns the status.
func (c *Command) Dispatch(args []string, subs []Sub, fail func(sub *Command, err error) int, stdout, stderr io.Writer) int {
	var list strings.Builder
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.Name
		fmt.Fprintf(&list, "  %-8s %s\n", s.Name, s.Summary)
	}
	c.Notes = "commands:\n" + list.String()
	if len(args) > 0 && args[0] == "help" {
		args = append(args[1:], "-h")
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if _, code, ok := c.Parse(args, stdout, stderr); !ok {
			return code
		}
		return c.Fail(stderr, "no command (%s -h lists them)", c.Name)
	}
	for _, s := range subs {
		if s.Name == args[0] {
			return c.runSub(s, args[1:], fail, stdout, stderr)
		}
	}
	hint := ""
	if near := Nearest(args[0], names); near != "" {
		hint = ": did you mean " + near + "?"
	}
	return c.Fail(stderr, "unknown command %q%s (%s -h lists them)", args[0], hint, c.Name)
}

func (c *Command) runSub(s Sub, args []string, fail func(*Command, error) int, stdout, stderr io.Writer) int {
	sc := New(c.Name+" "+s.Name, s.Usage, s.Description, s.Exits)
	sc.Stdout, sc.Stderr = stdout, stderr
	run := s.Setup(sc)
	pos, code, ok := sc.ParseArgs(args, s.MinArgs, s.MaxArgs, stdout, stderr)
	if !ok {
		return code
	}
	err := run(pos)
	var ex *Exit
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ex):
		if ex.Msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", sc.Name, ex.Msg)
		}
		return ex.Code
	}
	return fail(sc, err)
}
