package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Help writes the command's help: usage line, description, flags, notes
// and exit codes.
func (c *Command) Help(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", c.Usage, strings.TrimSpace(c.Description))
	b.WriteString("\nflags:\n")
	c.Flags.VisitAll(func(f *flag.Flag) { writeFlag(&b, f) })
	if c.Notes != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.Notes))
	}
	fmt.Fprintf(&b, "\nexit status:\n%s\n", strings.TrimSpace(c.Exits))
	io.WriteString(w, b.String())
}

// writeFlag writes one flag as flag.PrintDefaults does, with "duration"
// for the duration flags (which take seconds too).
func writeFlag(b *strings.Builder, f *flag.Flag) {
	kind, usage := flag.UnquoteUsage(f)
	if kind == "value" {
		switch f.Value.(type) {
		case *durationValue:
			kind = "duration"
		case *uint32Value:
			kind = "uint32"
		case interface{ listFlag() }:
			kind = "list"
		}
	}
	fmt.Fprintf(b, "  -%s", f.Name)
	if kind != "" {
		fmt.Fprintf(b, " %s", kind)
	}
	fmt.Fprintf(b, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
	if def := f.DefValue; !isZero(def) {
		if g, ok := f.Value.(flag.Getter); ok {
			if _, str := g.Get().(string); str {
				def = fmt.Sprintf("%q", def)
			}
		}
		fmt.Fprintf(b, " (default %s)", def)
	}
	b.WriteByte('\n')
}

func isZero(def string) bool {
	switch def {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}
