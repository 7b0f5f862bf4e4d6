package cli

import (
	"fmt"
	"io"
	"strings"
)

// Sub is one subcommand of a command made of subcommands (imp2-bench
// run, plot, …): its name, a one-line summary for the parent's -h, and
// the function that is the subcommand, given the arguments after its name.
type Sub struct {
	Name, Summary string
	Run           func(args []string, stdout, stderr io.Writer) int
}

// Dispatch runs the subcommand args[0] names. The parent answers -h (its
// description and the list of subcommands), "help SUB" (SUB's -h) and
// -version itself; no subcommand, an unknown one (with the nearest name)
// or an unknown flag before it is one line and ExitUsage.
func (c *Command) Dispatch(args []string, subs []Sub, stdout, stderr io.Writer) int {
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
			return s.Run(args[1:], stdout, stderr)
		}
	}
	hint := ""
	if near := Nearest(args[0], names); near != "" {
		hint = ": did you mean " + near + "?"
	}
	return c.Fail(stderr, "unknown command %q%s (%s -h lists them)", args[0], hint, c.Name)
}
