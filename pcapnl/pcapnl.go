// Package pcapnl stores netlink frames in pcapng files with link type
// LINKTYPE_NETLINK (253), zstd-compressed and crash tolerant, in a layout
// that tshark/Wireshark and the zstd CLI read directly.
//
// # File names
//
// Every imp2 tool writes the format and compression a trace's name asks
// for (FormatFor, Create): .zst zstd, .gz gzip, anything else plain, and
// .pcap (before any .zst/.gz) classic pcap, which tcpdump -r reads, with
// what classic pcap cannot hold lost (Format.Loses). Reading goes by
// magic numbers, never by name.
//
// # File layout
//
// A file written by Writer is one little-endian pcapng section (readers
// detect the byte order from the byte-order magic; Reader takes both):
//
//	SHB  shb_os, shb_userappl, opt_comment
//	IDB  LINKTYPE_NETLINK, snaplen, if_name ("imp2"), if_description,
//	     if_tsresol = 9 (nanoseconds), opt_comment "netlink family N"
//	EPB  one per frame: 16-byte LINKTYPE_NETLINK pseudo-header followed by
//	     the netlink bytes exactly as received or sent; epb_flags (direction)
//	     and, when the recorder lost frames just before this one,
//	     epb_dropcount
//	...
//	ISB  at Close: isb_starttime, isb_endtime, isb_ifrecv, isb_ifdrop
//
// The pseudo-header (16 bytes, big-endian fields) is: packet type (2 bytes),
// ARPHRD_NETLINK = 824 (2), link-layer address length and address (12, zero),
// netlink family (2). See Direction for the packet type convention.
//
// # Compression and crash tolerance
//
// By default (WriterOptions' zero value) the pcapng stream is compressed with zstd (level "default",
// comparable to zstd -3). The writer flushes, ending a zstd block, whenever
// FlushInterval has passed since data was first left pending or FlushBytes of
// uncompressed pcapng are pending, whichever comes first, and a flush always
// falls on an EPB boundary. A writer killed with SIGKILL therefore loses at
// most the frames of one window; everything flushed before it is in the file
// and decodes byte-exactly. What tshark 4.0 and our Reader do with such a
// file is described on Writer.
//
// # Reading
//
// Reader accepts zstd, gzip or uncompressed input, holding either pcapng or
// classic pcap (as written by tcpdump -i nlmon0 -w), detected by magic
// numbers, from any io.Reader (files or streams; it never seeks).
package pcapnl

import (
	"errors"
	"fmt"
	"strings"
)

// LinkTypeNetlink is LINKTYPE_NETLINK, the link type of every interface we
// write and the only one Reader accepts.
const LinkTypeNetlink = 253

// ARPHRDNetlink is the ARPHRD type stored in the pseudo-header.
const ARPHRDNetlink = 824

// PseudoHeaderLen is the length of the LINKTYPE_NETLINK pseudo-header that
// precedes the netlink bytes of every packet.
const PseudoHeaderLen = 16

// Direction tells who sent a frame's netlink bytes, as far as the trace
// establishes it; DirUnknown (the zero value) where it does not.
//
// Writer stores a known direction twice: in the pcapng epb_flags direction
// bits (inbound = ToUser, received by the recording process; outbound =
// ToKernel, sent by it), which Wireshark shows as
// frame.packet_flags_direction, and as the Linux SLL packet type in the
// pseudo-header (PACKET_HOST 0 and PACKET_OUTGOING 4), for older readers.
// Classic pcap has no epb_flags: there Writer stores nlmon's PACKET_USER
// (6) and PACKET_KERNEL (7), which Reader takes back.
//
// Reader takes the direction, in this order, from
//   - epb_flags inbound/outbound (pcapng; every file Writer wrote has it,
//     dumpcap writes none);
//   - for frames of an imp2 family (Reader.SetIMP2Families), the type of
//     the first message (see IMP2Direction): the protocol fixes it;
//   - the pseudo-header packet types PACKET_USER (6) and PACKET_KERNEL (7),
//     which name a direction and nothing else.
//
// Nothing else is evidence. In particular the packet type 4 (PACKET_OUTGOING)
// that tcpdump -i nlmon0 writes says nothing: a packet socket on nlmon sees
// every message as PACKET_OUTGOING, in both directions (the kernel's
// dev_queue_xmit_nit overwrites the PACKET_USER/PACKET_KERNEL nlmon sets),
// and nlmsg_pid 0 is no hint either (requests often leave it 0).
type Direction uint8

// Directions.
const (
	DirUnknown Direction = iota // the trace does not say
	ToUser                      // kernel → user
	ToKernel                    // user → kernel
)

// Linux packet types (sll_pkttype) in the pseudo-header.
const (
	packetHost     = 0 // Writer's ToUser
	packetOutgoing = 4 // Writer's ToKernel; every frame of an nlmon capture
	packetUser     = 6 // nlmon: to user space
	packetKernel   = 7 // nlmon: to kernel space
)

// pcapng epb_flags direction bits.
const (
	epbInbound  = 1
	epbOutbound = 2
)

func (d Direction) String() string {
	switch d {
	case ToUser:
		return "to-user"
	case ToKernel:
		return "to-kernel"
	}
	return "unknown"
}

// Frame is one captured netlink packet.
type Frame struct {
	// Time is the capture time in nanoseconds since the Unix epoch.
	Time int64
	// Direction tells who sent the message, or DirUnknown.
	Direction Direction
	// PacketType is the pseudo-header packet type as stored (Linux
	// sll_pkttype, as libpcap copies it). It is kept for faithful copies,
	// not as a direction: see Direction. Writer stores it only for frames
	// of unknown direction; for the others it writes 0 or 4 (pcapng) or
	// 6 or 7 (classic pcap).
	PacketType uint16
	// Family is the netlink protocol (unit), e.g. 31 for imp2.
	Family uint16
	// DropCount is the number of frames the recorder knows it lost between
	// the previous frame and this one (pcapng epb_dropcount). Zero means
	// none, and no option is written.
	DropCount uint64
	// Data holds the netlink bytes (one or more nlmsghdr-framed messages),
	// without the pseudo-header. Frames returned by Reader alias the
	// reader's buffer: Data is valid only until the next call to Next.
	Data []byte
	// OrigLen is the length of the netlink bytes before truncation to the
	// snap length. Writer ignores it (it uses len(Data)); Reader sets it.
	OrigLen int
}

// Errors. Reader errors wrap one of these; test with errors.Is.
var (
	// ErrTruncated: the input ended in the middle of a block or record, or
	// the compressed stream was cut short. Every complete frame before it
	// was returned.
	ErrTruncated = errors.New("pcapnl: truncated input")
	// ErrFormat: the input is not a pcapng or pcap file we can read, or it
	// is corrupt (bad magic, bad or absurd lengths, inconsistent blocks).
	ErrFormat = errors.New("pcapnl: malformed input")
	// ErrLinkType: an interface or file has a link type other than
	// LINKTYPE_NETLINK.
	ErrLinkType = errors.New("pcapnl: not LINKTYPE_NETLINK")
	// ErrClosed is returned by a Writer after Close.
	ErrClosed = errors.New("pcapnl: writer closed")
)

// Error describes a problem in the input at a given offset. Offset counts
// bytes of the decompressed pcapng/pcap stream (for uncompressed input it is
// the file offset), pointing at the start of the offending block or record.
type Error struct {
	Offset     int64  // decompressed stream offset of the block or record
	Frames     int64  // complete frames returned before the error
	Msg        string // what is wrong
	Err        error  // ErrTruncated, ErrFormat, ErrLinkType, or an I/O error
	Compressed bool   // Offset is in a zstd or gzip stream, not the file
}

// Error names pcapnl once: the kinds it wraps, whose own texts start with
// "pcapnl: ", follow without it.
func (e *Error) Error() string {
	return fmt.Sprintf("pcapnl: %s at %s (after %d frames): %s", e.Msg, e.Where(), e.Frames,
		strings.TrimPrefix(e.Err.Error(), "pcapnl: "))
}

// Where is the offset as a reader of the file needs it: "offset N" of a
// plain file, "decompressed offset N" of a compressed one.
func (e *Error) Where() string {
	if e.Compressed {
		return fmt.Sprintf("decompressed offset %d", e.Offset)
	}
	return fmt.Sprintf("offset %d", e.Offset)
}

func (e *Error) Unwrap() error { return e.Err }
