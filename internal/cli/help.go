package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Width is the most columns a line of help takes (a terminal's 80): the
// flag descriptions are wrapped to it, and the commands' own paragraphs
// are written within it (clitest.Help checks every line).
const Width = 80

// flagIndent starts a flag's description, as flag.PrintDefaults: the tab
// stops at column 8.
const flagIndent, flagIndentCols = "    \t", 8

// Help writes the command's help: usage line, description, flags, notes
// and exit codes. The description and the exit codes are prose, filled
// to Width whatever their line breaks; the notes (tables, a syntax) are
// written as they are.
func (c *Command) Help(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", c.Usage, reflow(c.Description))
	b.WriteString("\nflags:\n")
	c.Flags.VisitAll(func(f *flag.Flag) { writeFlag(&b, f) })
	if c.Notes != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.Notes))
	}
	fmt.Fprintf(&b, "\nexit status:\n%s\n", reflow(c.Exits))
	io.WriteString(w, b.String())
}

// writeFlag writes one flag as flag.PrintDefaults does, with "duration"
// for the duration flags (which take seconds too), its description
// wrapped to Width.
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
		case interface{ intFlag() }:
			kind = "int"
		}
	}
	fmt.Fprintf(b, "  -%s", f.Name)
	if kind != "" {
		fmt.Fprintf(b, " %s", kind)
	}
	if def := f.DefValue; !isZero(def) {
		if g, ok := f.Value.(flag.Getter); ok {
			if _, str := g.Get().(string); str {
				def = fmt.Sprintf("%q", def)
			}
		}
		usage += fmt.Sprintf(" (default %s)", def)
	}
	b.WriteByte('\n')
	for _, line := range wrap(usage, Width-flagIndentCols) {
		fmt.Fprintf(b, "%s%s\n", flagIndent, line)
	}
}

// reflow fills each paragraph of text (separated by a blank line) to
// Width.
func reflow(text string) string {
	paras := strings.Split(strings.TrimSpace(text), "\n\n")
	for i, p := range paras {
		paras[i] = strings.Join(wrap(strings.Join(strings.Fields(p), " "), Width), "\n")
	}
	return strings.Join(paras, "\n\n")
}

// wrap breaks text into lines of at most width characters at spaces,
// keeping its own line breaks; a word longer than width (a JSON example)
// stands alone on its line.
func wrap(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			switch {
			case line == "":
				line = word
			case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
				line += " " + word
			default:
				lines = append(lines, line)
				line = word
			}
		}
		lines = append(lines, line)
	}
	return lines
}

func isZero(def string) bool {
	switch def {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}
