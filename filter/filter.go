// Package filter selects trace frames by an expression (Syntax), the one
// language of imp2-replay -filter and imp2-record -filter: the replay
// applies it to the frames it reads, the recorder to the frames it is
// about to write. A package of its own so that both engines import it.
package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// Syntax describes the expressions Parse takes.
const Syntax = `Filter syntax: terms separated by spaces or commas, all of which must match.
A term is KEY=VALUES or KEY!=VALUES, VALUES being alternatives separated by '|'.
  family=N           netlink family (unit) of the frame, e.g. family=31
  type=T             nlmsg_type of the frame's first message: a number or
                     register (0), event (1), close (2), getstats (16),
                     stats (17)
  dir=D              user (kernel→user), kernel (user→kernel) or unknown (the
                     trace does not say: an nlmon capture's non-imp2 frames)
  src=P, dest=P      imp2 event addresses: an address or a prefix (10.0.0.0/8);
                     frames that are not imp2 events (IMP2_K_MSG on family
                     31 or 2) never match src= and always match src!=
  len=A-B            netlink bytes in the frame, a number or an inclusive range
Example: 'family=31 type=event dir=user src!=10.0.0.0/8'`

// Filter is a conjunction of terms, applied to every frame read.
type Filter struct {
	terms []term
}

type term struct {
	key    string
	negate bool
	nums   []numRange // family, type, len
	dirs   []pcapnl.Direction
	pfxs   []netip.Prefix // src, dest
}

type numRange struct{ lo, hi uint64 }

var typeNames = map[string]uint64{
	"register": imp2.TypeRegister, "u_pid": imp2.TypeRegister,
	"event": imp2.TypeEvent, "k_msg": imp2.TypeEvent,
	"close":    imp2.TypeClose,
	"getstats": imp2.TypeGetStats, "get_stats": imp2.TypeGetStats,
	"stats": imp2.TypeStats,
}

// Parse parses a filter expression (Syntax); the empty string matches
// all.
func Parse(s string) (*Filter, error) {
	f := &Filter{}
	for _, field := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		t, err := parseTerm(field)
		if err != nil {
			return nil, fmt.Errorf("filter term %q: %w", field, err)
		}
		f.terms = append(f.terms, t)
	}
	return f, nil
}

func parseTerm(s string) (term, error) {
	var t term
	key, vals, ok := strings.Cut(s, "=")
	if !ok || vals == "" {
		return t, fmt.Errorf("want KEY=VALUE or KEY!=VALUE")
	}
	if strings.HasSuffix(key, "!") {
		key, t.negate = strings.TrimSuffix(key, "!"), true
	}
	t.key = strings.ToLower(key)
	for _, v := range strings.Split(vals, "|") {
		v = strings.ToLower(strings.TrimSpace(v))
		switch t.key {
		case "family", "len":
			r, err := parseRange(v)
			if err != nil {
				return t, err
			}
			t.nums = append(t.nums, r)
		case "type":
			n, ok := typeNames[strings.TrimPrefix(strings.TrimPrefix(v, "imp2_"), "nlmsg_")]
			if !ok {
				var err error
				if n, err = strconv.ParseUint(v, 0, 16); err != nil {
					return t, fmt.Errorf("type %q: want a number or one of register, event, close, getstats, stats", v)
				}
			}
			t.nums = append(t.nums, numRange{n, n})
		case "dir", "direction":
			t.key = "dir"
			switch v {
			case "user", "to-user", "touser", "in":
				t.dirs = append(t.dirs, pcapnl.ToUser)
			case "kernel", "to-kernel", "tokernel", "out":
				t.dirs = append(t.dirs, pcapnl.ToKernel)
			case "unknown":
				t.dirs = append(t.dirs, pcapnl.DirUnknown)
			default:
				return t, fmt.Errorf("dir %q: want user, kernel or unknown", v)
			}
		case "src", "dest", "dst":
			if t.key == "dst" {
				t.key = "dest"
			}
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, err2 := netip.ParseAddr(v)
				if err2 != nil {
					return t, fmt.Errorf("%s %q: want an address or prefix", t.key, v)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			t.pfxs = append(t.pfxs, p.Masked())
		default:
			return t, fmt.Errorf("unknown key %q (family, type, dir, src, dest, len)", key)
		}
	}
	return t, nil
}

func parseRange(v string) (numRange, error) {
	lo, hi, isRange := strings.Cut(v, "-")
	a, err := strconv.ParseUint(lo, 0, 32)
	if err != nil {
		return numRange{}, fmt.Errorf("%q: want a number or A-B", v)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 0, 32); err != nil || b < a {
			return numRange{}, fmt.Errorf("%q: want a number or A-B", v)
		}
	}
	return numRange{a, b}, nil
}

// Match reports whether the frame passes every term (a nil Filter passes
// all). It allocates nothing.
func (f *Filter) Match(fr *pcapnl.Frame) bool {
	if f == nil {
		return true
	}
	for i := range f.terms {
		if f.terms[i].match(fr) == f.terms[i].negate {
			return false
		}
	}
	return true
}

func (t *term) match(fr *pcapnl.Frame) bool {
	switch t.key {
	case "family":
		return inRanges(t.nums, uint64(fr.Family))
	case "len":
		return inRanges(t.nums, uint64(len(fr.Data)))
	case "type":
		h, err := fr.Header()
		return err == nil && inRanges(t.nums, uint64(h.Type))
	case "dir":
		for _, d := range t.dirs {
			if fr.Direction == d {
				return true
			}
		}
		return false
	case "src", "dest":
		ev, ok := Event(fr)
		if !ok {
			return false
		}
		a := ev.Src
		if t.key == "dest" {
			a = ev.Dest
		}
		for _, p := range t.pfxs {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func inRanges(rs []numRange, v uint64) bool {
	for _, r := range rs {
		if v >= r.lo && v <= r.hi {
			return true
		}
	}
	return false
}

// IsIMP2 reports whether frames of this family are decoded as imp2: 31
// (the module's unit) and 2 (NETLINK_USERSOCK, used by user-space
// emulations such as the replay's netlink output and a recorder on
// family 2).
func IsIMP2(family uint16) bool {
	return family == imp2.DefaultFamily || family == imp2.UserSockFamily
}

// Event decodes the frame as an imp2 event (IMP2_K_MSG, kernel→user, on
// an imp2 family, IsIMP2), as src= and dest= see it. It allocates nothing
// for frames that are not events.
func Event(fr *pcapnl.Frame) (imp2.Event, bool) {
	if !IsIMP2(fr.Family) || fr.Direction == pcapnl.ToKernel {
		return imp2.Event{}, false
	}
	if h, err := fr.Header(); err != nil || h.Type != imp2.TypeEvent {
		return imp2.Event{}, false
	}
	ev, err := fr.EventOn(fr.Family)
	return ev, err == nil
}
