package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Rule is one condition on a command line, for Check (see Require).
type Rule struct {
	ok          bool
	what, flags string
}

// Require is the rule that ok holds: while it does not, each of flags
// (names separated by spaces) that was given is refused as "-FLAG WHAT";
// a rule without flags is refused as WHAT, whatever was given. Rules say
// what a flag is for (-verify-wait needs -verify) and which values make
// no sense, by the flag's name rather than by the option field an engine
// would name.
func Require(ok bool, what, flags string) Rule { return Rule{ok, what, flags} }

// Check returns the first rule broken, as the text of a usage error; it
// is for after Parse.
func (c *Command) Check(rules ...Rule) error {
	for _, r := range rules {
		if r.ok {
			continue
		}
		if r.flags == "" {
			return errors.New(r.what)
		}
		for _, f := range strings.Fields(r.flags) {
			if c.IsSet(f) {
				return fmt.Errorf("-%s %s", f, r.what)
			}
		}
	}
	return nil
}

// IsSet reports whether the flag name was given on the command line.
func (c *Command) IsSet(name string) (set bool) {
	c.Flags.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// AtMostOne reports whether at most one of the named flags was given.
func (c *Command) AtMostOne(names ...string) bool {
	n := 0
	for _, name := range names {
		if c.IsSet(name) {
			n++
		}
	}
	return n <= 1
}
