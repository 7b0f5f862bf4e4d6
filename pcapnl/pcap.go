package pcapnl

import "encoding/binary"

// Classic pcap (WriterOptions.Format Pcap): the libpcap file format, a
// 24-byte file header and a 16-byte header per record, with nanosecond
// timestamps (magic a1b23c4d, which libpcap 1.5 and later, and so
// tcpdump -r, read) and LINKTYPE_NETLINK. The records go into the
// Writer's buffer like EPBs: flushing, compression, the queue and the
// crash tolerance are the Writer's, as for pcapng.
//
// The direction goes into the pseudo-header packet type as nlmon's
// PACKET_USER/PACKET_KERNEL (the file has no epb_flags to hold it), so
// that Reader gives it back for any family; see Format.Loses for what
// does not survive.
//
// The two headers are encoded here rather than by gopacket's
// pcapgo.Writer: importing pcapgo brings in gopacket/layers, whose
// package-level tables (filled at init) raised imp2-replay's peak RSS
// from 61-87 MiB to 82-107 MiB on the same 40-frame trace (3 runs each),
// past TestReadAheadBoundedInBytes' bound, for 40 lines of format that
// TestPcapWriter checks byte for byte and tcpdump -r reads.
const (
	pcapRecordLen  = 16
	pcapMagicNanos = 0xa1b23c4d
)

// appendPcapHeader appends the pcap file header.
func appendPcapHeader(b []byte, snaplen int) []byte {
	b = le.AppendUint32(b, pcapMagicNanos)
	b = le.AppendUint16(b, 2) // version 2.4
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0) // thiszone: UTC
	b = le.AppendUint32(b, 0) // sigfigs
	b = le.AppendUint32(b, uint32(snaplen))
	return le.AppendUint32(b, LinkTypeNetlink)
}

// appendPcap is appendFrame for classic pcap; the caller holds mu.
func (w *Writer) appendPcap(f *Frame) error {
	origLen := len(f.Data) + PseudoHeaderLen
	capLen := min(origLen, w.snaplen)
	total := pcapRecordLen + capLen
	if len(w.buf)+total > w.limit {
		if err := w.drain(); err != nil {
			return err
		}
	}
	n := len(w.buf)
	w.buf = w.buf[:n+total]
	b := w.buf[n:]
	sec, ns := f.Time/1e9, f.Time%1e9
	if ns < 0 { // before the epoch: the second below, as time.Unix
		sec, ns = sec-1, ns+1e9
	}
	le.PutUint32(b[0:], uint32(sec))
	le.PutUint32(b[4:], uint32(ns))
	le.PutUint32(b[8:], uint32(capLen))
	le.PutUint32(b[12:], uint32(origLen))
	p := b[pcapRecordLen:]
	binary.BigEndian.PutUint16(p[0:], pcapPacketType(f))
	binary.BigEndian.PutUint16(p[2:], ARPHRDNetlink)
	clear(p[4:14]) // sll_halen, sll_addr
	binary.BigEndian.PutUint16(p[14:], f.Family)
	copy(p[PseudoHeaderLen:], f.Data[:capLen-PseudoHeaderLen])
	return w.account(f, total)
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
