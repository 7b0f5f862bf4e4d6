// Package imp2 speaks the imp2 netlink protocol: the message types, the
// event and statistics payloads, and a consumer connection.
//
// The wire format is defined once, in kmod/imp2_uapi.h; this file mirrors it
// and wire_test.go checks the mirror against the header.
package imp2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// DefaultFamily is the netlink unit the module uses unless its unit
// parameter says otherwise.
const DefaultFamily = 31

// Message types (nlmsg_type).
const (
	TypeRegister = 0    // IMP2_U_PID: user registers as a consumer
	TypeEvent    = 1    // IMP2_K_MSG: kernel event
	TypeClose    = 2    // IMP2_CLOSE: user unregisters
	TypeGetStats = 0x10 // IMP2_GET_STATS: user asks for counters
	TypeStats    = 0x11 // IMP2_STATS: counters reply
)

// Sizes of the wire structures.
const (
	HeaderLen = 16 // struct nlmsghdr
	LegacyLen = 8  // struct packet_info
	EventLen  = 32 // struct imp2_event up to the queue extension (IMP2_EVENT_LEN)
	// QueueEventLen is the whole struct imp2_event with the queue
	// extension, as modules from 2.1 send it (IMP2_QUEUE_EVENT_LEN).
	QueueEventLen = 48
	StatsLen      = 80 // struct imp2_stats
)

// EventFlagICMP says the ICMP fields of an event are valid (the packet was
// not a non-first fragment and its ICMP header was readable).
const EventFlagICMP = 0x0001

// Netlink header flags used by the control messages.
const (
	FlagRequest = 0x1 // NLM_F_REQUEST
	FlagAck     = 0x4 // NLM_F_ACK
)

// Header is a netlink message header in host byte order.
type Header struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

// Event is one imp2 kernel event. A legacy payload fills only Src and Dest;
// Extended reports whether the rest was on the wire.
type Event struct {
	Src, Dest netip.Addr
	Extended  bool
	// The fields below are valid only when Extended is true.
	TimeNs   uint64 // CLOCK_MONOTONIC of the unicast, in ns
	IfIndex  int32
	ICMPType uint8
	ICMPCode uint8
	ICMPID   uint16 // host order
	ICMPSeq  uint16 // host order
	Flags    uint16
	IPLen    uint16
	// HasQueue reports whether the queue extension was on the wire
	// (QueueEventLen bytes); the fields after it are valid only then.
	HasQueue bool
	// The consumer socket's receive queue when the module queued this
	// event (kmod/imp2_uapi.h says how exact they are): RmemAlloc its
	// sk_rmem_alloc including this event, RcvBuf its sk_rcvbuf, TrueSize
	// this event's skb truesize, and DropRmem sk_rmem_alloc at the failed
	// attempt that opened the nlmsg_seq gap before this event (0 without
	// a gap).
	RmemAlloc uint32
	RcvBuf    uint32
	TrueSize  uint32
	DropRmem  uint32
}

// Stats is the IMP2_STATS payload: per-namespace module counters and the
// asking socket's own registration.
type Stats struct {
	Events         uint64
	UnicastOK      uint64
	EAGAIN         uint64
	ECONNREFUSED   uint64
	ENOMEM         uint64
	OtherErr       uint64
	Consumers      uint32
	SelfRegistered bool
	SelfSent       uint64
	SelfDropped    uint64
	SelfLastSeq    uint32
}

// Errors returned by the decoders.
var (
	ErrShort     = errors.New("imp2: message too short")
	ErrBadLength = errors.New("imp2: nlmsg_len out of range")
)

var ne = binary.NativeEndian

// ParseHeader decodes the netlink header at the start of b and checks that
// nlmsg_len covers the header and fits in b. With ErrBadLength it returns
// the header as decoded too.
func ParseHeader(b []byte) (Header, error) {
	if !headerFits(b) {
		return headerError(b)
	}
	n, typ, flags, seq, pid := headerFields(b)
	return Header{Len: n, Type: typ, Flags: flags, Seq: seq, PID: pid}, nil
}

// headerFits reports whether b starts with a header whose nlmsg_len
// covers the header and fits in b.
func headerFits(b []byte) bool {
	return len(b) >= HeaderLen && ne.Uint32(b) >= HeaderLen && int64(ne.Uint32(b)) <= int64(len(b))
}

// headerFields decodes the first HeaderLen bytes of b.
//
// The receive paths parse every message, and a Header is five fields, too
// many for the compiler to keep one in registers: one assembled on the
// stack field by field and then copied as a whole (as returning it from a
// function does) costs a store-forwarding stall, about 7 ns a message. So
// the fields travel as scalars and each Header is built where it ends up
// (ParseHeader's result, the Msg of Messages): record's
// BenchmarkTraceWrite, a recorder's own work per frame, went from 55 ns
// to 29 with that and the same care for the pcapnl.Frame it fills.
func headerFields(b []byte) (n uint32, typ, flags uint16, seq, pid uint32) {
	b = b[:HeaderLen]
	return ne.Uint32(b[0:4]), ne.Uint16(b[4:6]), ne.Uint16(b[6:8]), ne.Uint32(b[8:12]), ne.Uint32(b[12:16])
}

// headerError is ParseHeader's answer for b, for which headerFits is
// false: what is wrong, and the header as decoded if b holds one.
//
//go:noinline
func headerError(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: %d bytes, want at least %d for the header", ErrShort, len(b), HeaderLen)
	}
	n, typ, flags, seq, pid := headerFields(b)
	h := Header{Len: n, Type: typ, Flags: flags, Seq: seq, PID: pid}
	return h, fmt.Errorf("%w: nlmsg_len %d with %d bytes present", ErrBadLength, n, len(b))
}

// PutHeader encodes h into the first HeaderLen bytes of b.
func PutHeader(b []byte, h Header) {
	ne.PutUint32(b[0:4], h.Len)
	ne.PutUint16(b[4:6], h.Type)
	ne.PutUint16(b[6:8], h.Flags)
	ne.PutUint32(b[8:12], h.Seq)
	ne.PutUint32(b[12:16], h.PID)
}

// AppendControl appends a bare control message (IMP2_U_PID, IMP2_CLOSE or
// IMP2_GET_STATS) as the original consumer sent it: NLMSG_LENGTH(0), the
// given flags, and pid as nlmsg_pid (the kernel ignores it).
func AppendControl(b []byte, typ, flags uint16, seq, pid uint32) []byte {
	var h [HeaderLen]byte
	PutHeader(h[:], Header{Len: HeaderLen, Type: typ, Flags: flags, Seq: seq, PID: pid})
	return append(b, h[:]...)
}

// ParseEvent decodes an IMP2_K_MSG payload (the bytes after the header).
// Eight bytes make a legacy event; EventLen or more an extended one;
// QueueEventLen or more one with the queue extension; bytes past
// QueueEventLen belong to later extensions and are ignored.
func ParseEvent(p []byte) (Event, error) {
	if len(p) < LegacyLen {
		return Event{}, fmt.Errorf("%w: event payload %d bytes, want at least %d", ErrShort, len(p), LegacyLen)
	}
	e := Event{
		Src:  netip.AddrFrom4([4]byte(p[0:4])),
		Dest: netip.AddrFrom4([4]byte(p[4:8])),
	}
	if len(p) < EventLen {
		return e, nil
	}
	e.Extended = true
	e.TimeNs = ne.Uint64(p[8:16])
	e.IfIndex = int32(ne.Uint32(p[16:20]))
	e.ICMPType = p[20]
	e.ICMPCode = p[21]
	e.ICMPID = binary.BigEndian.Uint16(p[22:24])
	e.ICMPSeq = binary.BigEndian.Uint16(p[24:26])
	e.Flags = ne.Uint16(p[26:28])
	e.IPLen = ne.Uint16(p[28:30])
	if len(p) < QueueEventLen {
		return e, nil
	}
	e.HasQueue = true
	e.RmemAlloc = ne.Uint32(p[32:36])
	e.RcvBuf = ne.Uint32(p[36:40])
	e.TrueSize = ne.Uint32(p[40:44])
	e.DropRmem = ne.Uint32(p[44:48])
	return e, nil
}

// AppendEvent appends the payload of e: the legacy 8 bytes, the extension
// when e.Extended is set, and the queue extension when e.HasQueue is set
// too. Src and Dest must be IPv4.
func AppendEvent(b []byte, e Event) []byte {
	src, dst := e.Src.As4(), e.Dest.As4()
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	if !e.Extended {
		return b
	}
	var x [EventLen - LegacyLen]byte
	ne.PutUint64(x[0:8], e.TimeNs)
	ne.PutUint32(x[8:12], uint32(e.IfIndex))
	x[12] = e.ICMPType
	x[13] = e.ICMPCode
	binary.BigEndian.PutUint16(x[14:16], e.ICMPID)
	binary.BigEndian.PutUint16(x[16:18], e.ICMPSeq)
	ne.PutUint16(x[18:20], e.Flags)
	ne.PutUint16(x[20:22], e.IPLen)
	b = append(b, x[:]...)
	if !e.HasQueue {
		return b
	}
	var q [QueueEventLen - EventLen]byte
	ne.PutUint32(q[0:4], e.RmemAlloc)
	ne.PutUint32(q[4:8], e.RcvBuf)
	ne.PutUint32(q[8:12], e.TrueSize)
	ne.PutUint32(q[12:16], e.DropRmem)
	return append(b, q[:]...)
}

// AppendEventMessage appends a whole IMP2_K_MSG (header and payload) with
// the given sequence number and nlmsg_pid 0, as the module sends it.
func AppendEventMessage(b []byte, seq uint32, e Event) []byte {
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	b = AppendEvent(b, e)
	PutHeader(b[start:], Header{Len: uint32(len(b) - start), Type: TypeEvent, Seq: seq})
	return b
}

// ParseStats decodes an IMP2_STATS payload.
func ParseStats(p []byte) (Stats, error) {
	if len(p) < StatsLen {
		return Stats{}, fmt.Errorf("%w: stats payload %d bytes, want %d", ErrShort, len(p), StatsLen)
	}
	return Stats{
		Events:         ne.Uint64(p[0:8]),
		UnicastOK:      ne.Uint64(p[8:16]),
		EAGAIN:         ne.Uint64(p[16:24]),
		ECONNREFUSED:   ne.Uint64(p[24:32]),
		ENOMEM:         ne.Uint64(p[32:40]),
		OtherErr:       ne.Uint64(p[40:48]),
		Consumers:      ne.Uint32(p[48:52]),
		SelfRegistered: ne.Uint32(p[52:56]) != 0,
		SelfSent:       ne.Uint64(p[56:64]),
		SelfDropped:    ne.Uint64(p[64:72]),
		SelfLastSeq:    ne.Uint32(p[72:76]),
	}, nil
}

// AppendStats appends the IMP2_STATS payload of s.
func AppendStats(b []byte, s Stats) []byte {
	var x [StatsLen]byte
	ne.PutUint64(x[0:8], s.Events)
	ne.PutUint64(x[8:16], s.UnicastOK)
	ne.PutUint64(x[16:24], s.EAGAIN)
	ne.PutUint64(x[24:32], s.ECONNREFUSED)
	ne.PutUint64(x[32:40], s.ENOMEM)
	ne.PutUint64(x[40:48], s.OtherErr)
	ne.PutUint32(x[48:52], s.Consumers)
	if s.SelfRegistered {
		ne.PutUint32(x[52:56], 1)
	}
	ne.PutUint64(x[56:64], s.SelfSent)
	ne.PutUint64(x[64:72], s.SelfDropped)
	ne.PutUint32(x[72:76], s.SelfLastSeq)
	return append(b, x[:]...)
}
