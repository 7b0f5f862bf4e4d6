package replay

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// NewText returns an output that writes one line per frame to w, readable
// or, with asJSON, one JSON object a line. Both carry the same fields:
//
//	time      the frame's time in the replayed schedule (RFC 3339, ns);
//	          as recorded unless the Timing re-times it
//	dir       user (kernel→user) or kernel (user→kernel)
//	family    netlink family
//	type      nlmsg_type of the first message, named on imp2 families
//	len       netlink bytes in the frame
//	seq, pid, flags   of the first message
//	msgs      number of netlink messages, when more than one
//	drops     frames the recorder lost just before this one, when any
//	src, dest and, for extended events, time_ns ifindex icmp_type
//	icmp_code icmp_id icmp_seq ip_len ev_flags: decoded imp2 event fields
//	rmem_alloc rcvbuf truesize drop_rmem: the queue extension, when present
//
// Lines are built by appending into one buffer; nothing is allocated per
// frame. With live (a replay that follows the clock), every send is
// flushed. Close closes c, if not nil, after the last line.
func NewText(w io.Writer, c io.Closer, asJSON, live bool) Output {
	return newTextOut(w, c, asJSON, live)
}

type textOut struct {
	fileOut
	dst  io.Writer
	json bool
	w    *bufio.Writer
	live bool
	line []byte
}

func newTextOut(w io.Writer, c io.Closer, json, live bool) *textOut {
	o := &textOut{dst: w, json: json, w: bufio.NewWriterSize(w, 64<<10), live: live}
	o.fileOut = fileOut{flush: o.w.Flush, c: c, name: "text"}
	if json {
		o.name = "json"
	}
	return o
}

// Start makes sure the destination exists (an OutputFile is created
// here), as for a replay that writes no line.
func (o *textOut) Start(ctx context.Context) error {
	if err := o.open(ctx); err != nil {
		return err
	}
	_, err := o.dst.Write(nil)
	return err
}

func (o *textOut) Send(frames []pcapnl.Frame, ts []int64) error {
	for i := range frames {
		o.line = o.format(o.line[:0], &frames[i], ts[i])
		if _, err := o.w.Write(o.line); err != nil {
			return err
		}
	}
	if o.live {
		return o.w.Flush()
	}
	return nil
}

// TimeFormat is the time field of text and JSON lines: RFC 3339 with a
// fixed nanosecond field, so text columns line up.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

var typeLabel = map[uint16]string{
	imp2.TypeRegister: "IMP2_U_PID", imp2.TypeEvent: "IMP2_K_MSG", imp2.TypeClose: "IMP2_CLOSE",
	imp2.TypeGetStats: "IMP2_GET_STATS", imp2.TypeStats: "IMP2_STATS",
}

func dirLabel(d pcapnl.Direction) string {
	switch d {
	case pcapnl.ToUser:
		return "user"
	case pcapnl.ToKernel:
		return "kernel"
	}
	return "unknown" // the trace does not say: never a guess

}

// field appends one key/value pair: "key value" in text, "key":value in
// JSON (quoted is for string values).
func (o *textOut) field(b []byte, key string, val []byte, quoted bool) []byte {
	if o.json {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		if quoted {
			b = append(b, '"')
			b = append(b, val...) // our values never need escaping
			return append(b, '"')
		}
		return append(b, val...)
	}
	if len(b) > 0 {
		b = append(b, ' ')
	}
	b = append(b, key...)
	b = append(b, ' ')
	return append(b, val...)
}

func (o *textOut) uint(b []byte, key string, v uint64) []byte {
	var s [20]byte
	return o.field(b, key, strconv.AppendUint(s[:0], v, 10), false)
}

func (o *textOut) str(b []byte, key, v string) []byte {
	var s [64]byte
	return o.field(b, key, append(s[:0], v...), true)
}

func (o *textOut) addr(b []byte, key string, a netip.Addr) []byte {
	var s [48]byte
	return o.field(b, key, a.AppendTo(s[:0]), true)
}

func (o *textOut) format(b []byte, fr *pcapnl.Frame, ts int64) []byte {
	if o.json {
		b = append(b, '{')
	}
	var tb [40]byte
	t := time.Unix(0, ts).UTC().AppendFormat(tb[:0], TimeFormat)
	if o.json {
		b = o.field(b, "time", t, true)
	} else {
		b = append(b, t...) // text lines start with the bare time
	}
	b = o.str(b, "dir", dirLabel(fr.Direction))
	b = o.uint(b, "family", uint64(fr.Family))
	h, err := fr.Header()
	if err != nil {
		b = o.uint(b, "len", uint64(len(fr.Data)))
		b = o.str(b, "error", "bad netlink header")
		return o.end(b)
	}
	if name, ok := typeLabel[h.Type]; ok && filter.IsIMP2(fr.Family) {
		b = o.str(b, "type", name)
	} else {
		b = o.uint(b, "type", uint64(h.Type))
	}
	b = o.uint(b, "len", uint64(len(fr.Data)))
	b = o.uint(b, "seq", uint64(h.Seq))
	b = o.uint(b, "pid", uint64(h.PID))
	if h.Flags != 0 {
		var s [8]byte
		b = o.field(b, "flags", strconv.AppendUint(append(s[:0], "0x"...), uint64(h.Flags), 16), true)
	}
	if n := countMessages(fr.Data); n > 1 {
		b = o.uint(b, "msgs", uint64(n))
	}
	if fr.DropCount > 0 {
		b = o.uint(b, "drops", fr.DropCount)
	}
	if ev, ok := filter.Event(fr); ok {
		b = o.addr(b, "src", ev.Src)
		b = o.addr(b, "dest", ev.Dest)
		if ev.Extended {
			b = o.uint(b, "time_ns", ev.TimeNs)
			var s [12]byte
			b = o.field(b, "ifindex", strconv.AppendInt(s[:0], int64(ev.IfIndex), 10), false)
			b = o.uint(b, "icmp_type", uint64(ev.ICMPType))
			b = o.uint(b, "icmp_code", uint64(ev.ICMPCode))
			b = o.uint(b, "icmp_id", uint64(ev.ICMPID))
			b = o.uint(b, "icmp_seq", uint64(ev.ICMPSeq))
			b = o.uint(b, "ip_len", uint64(ev.IPLen))
			b = o.uint(b, "ev_flags", uint64(ev.Flags))
		}
		if ev.HasQueue {
			b = o.uint(b, "rmem_alloc", uint64(ev.RmemAlloc))
			b = o.uint(b, "rcvbuf", uint64(ev.RcvBuf))
			b = o.uint(b, "truesize", uint64(ev.TrueSize))
			b = o.uint(b, "drop_rmem", uint64(ev.DropRmem))
		}
	}
	return o.end(b)
}

func (o *textOut) end(b []byte) []byte {
	if o.json {
		b = append(b, '}')
	}
	return append(b, '\n')
}

// countMessages counts the netlink messages in a frame, stopping at the
// first malformed header.
func countMessages(b []byte) int {
	n := 0
	for _, err := range imp2.Messages(b) {
		if err != nil {
			break
		}
		n++
	}
	return n
}
