// Package cli is the command-line conventions every imp2 command shares
// (imp2-record, imp2-replay, imp2-bench and each of its subcommands), so
// that they answer alike:
//
//   - -h, -help and --help print the command's usage line, description,
//     flags, notes and exit codes on stdout and exit 0;
//   - a mistyped or unknown flag is one line on stderr naming it and the
//     nearest flag, or what it is in tcpdump or tcpreplay when the command
//     declares that habit, and exit status 2: never the whole usage, never
//     twice;
//   - -version prints the build (Version) and exits 0;
//   - flags may come before, between or after the positional arguments;
//   - duration flags take a bare number of seconds (DurationVar);
//   - a command made of subcommands (Dispatch) answers -h with their
//     list, "help SUB", and an unknown one with the nearest name.
//
// The flag names themselves stay with the commands; the flag types they
// share beyond package flag's (DurationVar, Uint32Var, ListVar) are here.
// Package clitest checks a built binary against these rules.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
)

// ExitUsage is the exit status of a command line that is wrong, in every
// imp2 command; ExitOK that of -h and -version.
const (
	ExitOK    = 0
	ExitUsage = 2
)

// Command is one command's command line: what -h says about it and its
// flags.
type Command struct {
	// Name is what messages start with: "imp2-record", "imp2-bench run".
	Name string
	// Usage is the usage line after "usage: ", e.g. "imp2-record -o PATH
	// [flags]".
	Usage string
	// Description is one paragraph on what the command does, and what a
	// positional argument is.
	Description string
	// Notes, if any, follow the flags (a filter syntax, the outputs).
	Notes string
	// Exits lists the exit statuses and what each means.
	Exits string
	// Habits maps the flags (without dashes) that users of tcpdump,
	// tcpreplay or other tools type and this command does not define to
	// the hint for them, e.g. "w": Like("o", "tcpdump's -w").
	Habits map[string]string
	// Flags is the command's flag set; New makes it, with -version.
	Flags *flag.FlagSet
	// FlagArgs are the arguments Parse read as flags and their values, in
	// order, without the positional ones (to hand a command line on).
	FlagArgs []string
	// Stdout and Stderr are where a subcommand writes (Dispatch sets them).
	Stdout, Stderr io.Writer
	version        *bool
}

// New is a command with an empty flag set that prints nothing itself:
// Parse does the talking.
func New(name, usage, description, exits string) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c := &Command{Name: name, Usage: usage, Description: description, Exits: exits, Flags: fs}
	c.version = fs.Bool("version", false, "print the build (module version, VCS revision, dirty) and exit")
	return c
}

// Like is the hint for another tool's flag that is ours under another
// name: Like("o", "tcpdump's -w") says "did you mean -o (tcpdump's -w)?".
func Like(ours, theirs string) string {
	return fmt.Sprintf("did you mean -%s (%s)?", ours, theirs)
}

// Parse parses args: flags anywhere among the positional arguments (up to
// a "--", after which everything is positional), which it returns. When
// ok is false the command is done and exits with code: -h or -version
// answered (0), or the one-line usage error written to stderr (2).
func (c *Command) Parse(args []string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	for len(args) > 0 {
		err := c.Flags.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.Help(stdout)
			return nil, ExitOK, false
		} else if err != nil {
			return nil, c.Fail(stderr, "%s", c.explain(err)), false
		}
		rest := c.Flags.Args()
		n := len(args) - len(rest)
		c.FlagArgs = append(c.FlagArgs, args[:n]...)
		if n > 0 && args[n-1] == "--" { // the end of the flags
			c.FlagArgs = c.FlagArgs[:len(c.FlagArgs)-1]
			pos, rest = append(pos, rest...), nil
		}
		if len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
		args = rest
	}
	if *c.version {
		fmt.Fprintf(stdout, "%s %s %s\n", strings.Fields(c.Name)[0], Version(), runtime.Version())
		return nil, ExitOK, false
	}
	return pos, ExitOK, true
}

// ParseArgs is Parse wanting from min to max positional arguments (max
// < 0: any number); another count is a usage error naming the usage line.
func (c *Command) ParseArgs(args []string, min, max int, stdout, stderr io.Writer) ([]string, int, bool) {
	pos, code, ok := c.Parse(args, stdout, stderr)
	if ok && (len(pos) < min || max >= 0 && len(pos) > max) {
		if len(pos) > 0 && max == 0 {
			return nil, c.Fail(stderr, "unexpected argument %q (usage: %s)", pos[0], c.Usage), false
		}
		plural := map[bool]string{true: "s"}[len(pos) != 1]
		return nil, c.Fail(stderr, "got %d argument%s (usage: %s)", len(pos), plural, c.Usage), false
	}
	return pos, code, ok
}

// Fail writes one line, "NAME: MESSAGE", on stderr and returns ExitUsage:
// the way to refuse a command line after Parse.
func (c *Command) Fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n", c.Name, fmt.Sprintf(format, args...))
	return ExitUsage
}

// explain turns a flag package error into the one line a user reads: for
// an unknown flag, the nearest one or the habit's hint.
func (c *Command) explain(err error) string {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	name, found := strings.CutPrefix(msg, undefined)
	if !found {
		return wantFor(c.Flags, msg)
	}
	if hint, ok := c.Habits[name]; ok {
		return fmt.Sprintf("unknown flag -%s: %s", name, hint)
	}
	if near := c.nearest(name); near != "" {
		return fmt.Sprintf("unknown flag -%s: did you mean -%s?", name, near)
	}
	return fmt.Sprintf("unknown flag -%s (%s -h lists the flags)", name, c.Name)
}

// wantFor replaces the flag package's "parse error" for a number or a
// boolean with what the flag takes.
func wantFor(fs *flag.FlagSet, msg string) string {
	head, found := strings.CutSuffix(msg, ": parse error")
	_, name, named := strings.Cut(head, " for flag -")
	if !named { // a boolean's
		_, name, named = strings.Cut(head, " for -")
	}
	f := fs.Lookup(name)
	if !found || !named || f == nil {
		return msg
	}
	want := ""
	switch f.Value.(flag.Getter).Get().(type) {
	case int, int64:
		want = "a whole number"
	case uint, uint64:
		want = "a whole number, 0 or more"
	case float64:
		want = "a number"
	case bool:
		want = "true or false"
	default:
		return msg
	}
	return head + ": want " + want
}
