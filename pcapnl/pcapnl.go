// Package pcapnl stores netlink frames in pcapng files with link type
// LINKTYPE_NETLINK (253), zstd-compressed and crash tolerant, in a layout
// that tshark/Wireshark and the zstd CLI read directly.
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
// By default the pcapng stream is compressed with zstd (level "default",
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
)

// LinkTypeNetlink is LINKTYPE_NETLINK, the link type of every interface we
// write and the only one Reader accepts.
const LinkTypeNetlink = 253

// ARPHRDNetlink is the ARPHRD type stored in the pseudo-header.
const ARPHRDNetlink = 824

// PseudoHeaderLen is the length of the LINKTYPE_NETLINK pseudo-header that
// precedes the netlink bytes of every packet.
const PseudoHeaderLen = 16

// Direction is the packet type field of the LINKTYPE_NETLINK pseudo-header,
// kept verbatim. Writer stores the Linux SLL conventions seen from the
// recording process: ToUser (PACKET_HOST, "unicast to us") for messages the
// recorder received from the kernel and ToKernel (PACKET_OUTGOING, "sent by
// us") for messages it sent. It also sets the pcapng epb_flags direction bits
// (inbound / outbound), because Wireshark 4.0 ignores the pseudo-header packet
// type entirely but shows epb_flags as frame.packet_flags_direction.
//
// Captures made on an nlmon device may instead carry the kernel's
// PACKET_USER (6, "to user space") and PACKET_KERNEL (7, "to kernel space");
// Reader maps those to ToUser and ToKernel. Any other value is passed through.
type Direction uint16

// Directions.
const (
	ToUser   Direction = 0 // kernel → user (PACKET_HOST)
	ToKernel Direction = 4 // user → kernel (PACKET_OUTGOING)
)

// Linux PACKET_USER and PACKET_KERNEL, used by nlmon.
const (
	packetUser   = 6
	packetKernel = 7
)

func (d Direction) String() string {
	switch d {
	case ToUser:
		return "to-user"
	case ToKernel:
		return "to-kernel"
	}
	return fmt.Sprintf("pkttype(%d)", uint16(d))
}

// Frame is one captured netlink packet.
type Frame struct {
	// Time is the capture time in nanoseconds since the Unix epoch.
	Time int64
	// Direction tells who sent the message.
	Direction Direction
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
	Offset int64  // decompressed stream offset of the block or record
	Frames int64  // complete frames returned before the error
	Msg    string // what is wrong
	Err    error  // ErrTruncated, ErrFormat, ErrLinkType, or an I/O error
}

func (e *Error) Error() string {
	return fmt.Sprintf("pcapnl: %s at decompressed offset %d (after %d frames): %v", e.Msg, e.Offset, e.Frames, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
