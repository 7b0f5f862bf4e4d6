package pcapnl

import (
	"encoding/binary"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapRecordLen is the length of a classic pcap record header.
const pcapRecordLen = 16

// pcapEncoder writes classic pcap (WriterOptions.Format Pcap) with
// gopacket's pcapgo.Writer, nanosecond timestamps (magic a1b23c4d, which
// libpcap 1.5 and later, and so tcpdump -r, read), into the Writer's
// buffer: flushing, compression, the queue and the crash tolerance are
// the Writer's, as for pcapng.
//
// The direction goes into the pseudo-header packet type as nlmon's
// PACKET_USER/PACKET_KERNEL (the file has no epb_flags to hold it), so
// that Reader gives it back for any family; see Format.Loses for what
// does not survive.
type pcapEncoder struct {
	pw  *pcapgo.Writer
	rec []byte // pseudo-header and netlink bytes of the record being written
}

// appendTo is an io.Writer that appends to the Writer's buffer (through a
// pointer: the queue swaps the buffer).
type appendTo struct{ buf *[]byte }

func (a appendTo) Write(p []byte) (int, error) {
	*a.buf = append(*a.buf, p...)
	return len(p), nil
}

// newPcapEncoder appends the pcap file header to w's buffer.
func newPcapEncoder(w *Writer, snaplen int) *pcapEncoder {
	e := &pcapEncoder{pw: pcapgo.NewWriterNanos(appendTo{&w.buf}), rec: make([]byte, snaplen)}
	e.pw.WriteFileHeader(uint32(snaplen), layers.LinkType(LinkTypeNetlink)) // appending cannot fail
	return e
}

// appendPcap is appendFrame for classic pcap.
func (w *Writer) appendPcap(f *Frame) error {
	origLen := len(f.Data) + PseudoHeaderLen
	capLen := min(origLen, w.snaplen)
	total := pcapRecordLen + capLen
	if len(w.buf)+total > w.limit {
		if err := w.drain(); err != nil {
			return err
		}
	}
	w.pcap.append(f, capLen, origLen)
	return w.account(f, total)
}

// append appends f's record (pcapRecordLen+capLen bytes).
func (e *pcapEncoder) append(f *Frame, capLen, origLen int) {
	rec := e.rec[:capLen]
	putPseudoHeader(rec, pcapPacketType(f), f.Family)
	copy(rec[PseudoHeaderLen:], f.Data)
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.Time), CaptureLength: capLen, Length: origLen}
	e.pw.WritePacket(ci, rec) // lengths are consistent and appending cannot fail
}

// putPseudoHeader writes the LINKTYPE_NETLINK pseudo-header into p.
func putPseudoHeader(p []byte, pktType, family uint16) {
	binary.BigEndian.PutUint16(p[0:], pktType)
	binary.BigEndian.PutUint16(p[2:], ARPHRDNetlink)
	clear(p[4:14])
	binary.BigEndian.PutUint16(p[14:], family)
}

// pcapPacketType is the pseudo-header packet type of f in classic pcap:
// nlmon's for a known direction, the frame's own otherwise.
func pcapPacketType(f *Frame) uint16 {
	switch f.Direction {
	case ToUser:
		return packetUser
	case ToKernel:
		return packetKernel
	}
	return f.PacketType
}
