package replay

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// The queue extension is printed when the event carries it, and only then.
func TestTextQueueFields(t *testing.T) {
	ev := imp2.Event{Src: netip.MustParseAddr("10.0.0.1"), Dest: netip.MustParseAddr("10.9.9.9"), Extended: true,
		HasQueue: true, RmemAlloc: 16896, RcvBuf: 16384, TrueSize: 768, DropRmem: 16512}
	var buf bytes.Buffer
	o := newTextOut(&buf, nil, false, false)
	o.line = o.format(nil, &pcapnl.Frame{Family: imp2.DefaultFamily, Direction: pcapnl.ToUser,
		Data: imp2.AppendEventMessage(nil, 7, ev)}, 0)
	line := string(o.line)
	for _, want := range []string{" len 64 ", " rmem_alloc 16896 ", " rcvbuf 16384 ", " truesize 768 ", " drop_rmem 16512\n"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %s", line, want)
		}
	}
	ev.HasQueue = false
	o.line = o.format(nil, &pcapnl.Frame{Family: imp2.DefaultFamily, Direction: pcapnl.ToUser,
		Data: imp2.AppendEventMessage(nil, 7, ev)}, 0)
	if strings.Contains(string(o.line), "rmem_alloc") {
		t.Errorf("event without the queue extension printed %q", o.line)
	}
}
