package cli

import (
	"flag"
	"strings"
)

// nearest is the defined flag a user most likely meant by name (Nearest).
func (c *Command) nearest(name string) string {
	var names []string
	c.Flags.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return Nearest(name, names)
}

// Nearest is the one of names a user most likely meant by name (a flag, a
// subcommand): the closest by edit distance when that distance is small
// for the name's length (a third of it, at least 1) and leaves one of its
// characters standing (-K is not a typo of -i), or else the only one that
// name is a prefix of. "" when none is near.
func Nearest(name string, names []string) string {
	var prefixed []string
	best, bestD := "", max(len(name)/3, 1)+1 // accept distances below bestD
	for _, n := range names {
		if strings.HasPrefix(n, name) {
			prefixed = append(prefixed, n)
		}
		if d := editDistance(strings.ToLower(name), n); d < bestD && d < len(name) {
			best, bestD = n, d
		}
	}
	if len(prefixed) == 1 && best == "" {
		return prefixed[0]
	}
	return best
}

// editDistance is the optimal-string-alignment distance of a and b in
// bytes (flag names are ASCII): insertions, deletions, substitutions and
// swaps of two neighbours ("-cuont") each count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			sub := d[i-1][j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			d[i][j] = min(sub, d[i-1][j]+1, d[i][j-1]+1)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
