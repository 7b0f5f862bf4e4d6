package filter_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

func TestMatch(t *testing.T) {
	ev := imp2.Event{Src: netip.MustParseAddr("10.1.2.3"), Dest: netip.MustParseAddr("192.0.2.9")}
	event := &pcapnl.Frame{Family: imp2.DefaultFamily, Direction: pcapnl.ToUser, Data: imp2.AppendEventMessage(nil, 1, ev)}
	register := &pcapnl.Frame{Family: imp2.DefaultFamily, Direction: pcapnl.ToKernel, Data: imp2.AppendControl(nil, imp2.TypeRegister, 0, 1, 0)}
	other := &pcapnl.Frame{Family: 16, Direction: pcapnl.DirUnknown, Data: event.Data}
	for _, c := range []struct {
		expr                   string
		event, register, other bool
	}{
		{"", true, true, true},
		{"type=event", true, false, true}, // family 16's type 1 is a number like any other
		{"type=event family=31", true, false, false},
		{"type=register|event dir=kernel", false, true, false},
		{"dir=unknown", false, false, true},
		{"src=10.0.0.0/8", true, false, false},
		{"src!=10.0.0.0/8", false, true, true},
		{"dest=192.0.2.9,type=event", true, false, false},
		{"len=0-16", false, true, false},
		{"family!=31", false, false, true},
	} {
		f, err := filter.Parse(c.expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.expr, err)
		}
		if got := [3]bool{f.Match(event), f.Match(register), f.Match(other)}; got != [3]bool{c.event, c.register, c.other} {
			t.Errorf("%q: event, register, other frame match %v, want %v", c.expr, got, [3]bool{c.event, c.register, c.other})
		}
	}
	if !(*filter.Filter)(nil).Match(event) {
		t.Error("a nil Filter must match every frame")
	}
}

func TestParseErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"foo=1":      `unknown key "foo"`,
		"type":       "want KEY=VALUE",
		"type=bogus": `type "bogus"`,
		"dir=up":     `dir "up"`,
		"src=10.0.0": `src "10.0.0"`,
		"len=9-3":    `"9-3": want a number or A-B`,
	} {
		_, err := filter.Parse(expr)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "filter term") {
			t.Errorf("Parse(%q): %v, want an error naming the term and %q", expr, err, want)
		}
	}
}
