package pcapnl

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/imp2/imp2/imp2"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Limits that keep a corrupt or hostile input from causing large
// allocations.
const (
	// MaxBlockLen is the largest pcapng block or pcap record accepted.
	MaxBlockLen = 16 << 20
	// MaxInterfaces is the largest number of interfaces per section.
	MaxInterfaces = 1 << 16
	// MaxZstdWindow is the largest zstd window the decoder accepts
	// (zstd -19 uses 8 MiB, --ultra -22 128 MiB).
	MaxZstdWindow = 64 << 20
)

const readBufSize = 128 << 10

// Section describes a pcapng section header.
type Section struct {
	BigEndian   bool
	Hardware    string // shb_hardware
	OS          string // shb_os
	Application string // shb_userappl
	Comment     string // first opt_comment
}

// Interface describes a pcapng interface (or the classic pcap header). An
// interface of another link type (a pcapng file of several interfaces, as
// dumpcap writes) is listed with its LinkType and SnapLen only: Reader
// skips it, and fails only on a packet for it.
type Interface struct {
	LinkType    uint16
	SnapLen     uint32
	Name        string // if_name
	Description string // if_description
	Comment     string // first opt_comment
	TSResol     uint8  // if_tsresol as stored (6 when absent)

	pow2   bool
	shift  uint   // 2^-shift seconds per unit
	mul    uint64 // ns per unit, for decimal resolutions up to 1 ns
	div    uint64 // units per ns, for finer decimal resolutions
	offset int64  // if_tsoffset, in ns
}

// Stats is an interface statistics block.
type Stats struct {
	Interface           int
	Time                int64 // when the statistics were taken, ns
	Start, End          int64 // isb_starttime, isb_endtime (0 if absent)
	Received, Dropped   uint64
	HasRecv, HasDropped bool
}

// Reader reads netlink frames from pcapng or classic pcap, compressed with
// zstd or gzip or not at all. It is not safe for concurrent use.
//
// Errors: at the clean end of the input Next returns io.EOF. Otherwise the
// error is an *Error wrapping ErrTruncated (the input stops inside a block
// or record, or the compressed stream is cut short: every complete frame
// before it has been returned), ErrFormat (corruption, foreign or
// unsupported data, lengths above MaxBlockLen) or ErrLinkType (a classic
// pcap of another link type, or a packet on a pcapng interface of another
// link type: interfaces without packets are skipped); its Offset is the
// position in the decompressed stream. A zstd frame whose checksum is
// missing or wrong fails after every pcapng block it holds has been read:
// those blocks came out before the checksum could be checked, and a wrong
// one says that the frames decoded from that zstd frame may be corrupt.
// Once Next has failed it keeps returning the same error.
type Reader struct {
	br          *bufio.Reader
	closer      io.Closer
	compression string
	pcapng      bool
	bo          binary.ByteOrder

	off    int64
	frames int64
	err    error

	section Section
	ifaces  []Interface
	stats   []Stats
	big     []byte
	imp2Fam []uint16 // families whose frames get IMP2Direction

	// classic pcap
	nsec bool
}

// NewReader detects the compression and the capture format of r by their
// magic numbers and reads the file header. It reads r sequentially and
// never seeks. Call Close to release the decompressor.
func NewReader(r io.Reader) (*Reader, error) {
	in := bufio.NewReaderSize(r, readBufSize)
	rd := &Reader{br: in, compression: "none", imp2Fam: []uint16{imp2.DefaultFamily}}
	m, err := in.Peek(4)
	if len(m) < 4 {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &Error{Msg: fmt.Sprintf("input too short for a magic number (%d bytes)", len(m)), Err: fmt.Errorf("%w: %w", ErrTruncated, err)}
	}
	switch {
	case m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd,
		m[0]&0xf0 == 0x50 && m[1] == 0x2a && m[2] == 0x4d && m[3] == 0x18: // skippable frame
		d, err := zstd.NewReader(in,
			zstd.WithDecoderMaxWindow(MaxZstdWindow),
			zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, &Error{Msg: "zstd", Err: fmt.Errorf("%w: %w", ErrFormat, err)}
		}
		rd.closer = closerFunc(func() error { d.Close(); return nil })
		rd.br = bufio.NewReaderSize(&zstdStream{d: d}, readBufSize)
		rd.compression = "zstd"
	case m[0] == 0x1f && m[1] == 0x8b:
		z, err := gzip.NewReader(in)
		if err != nil {
			return nil, &Error{Msg: "gzip header", Err: fmt.Errorf("%w: %w", ErrFormat, err)}
		}
		rd.closer = z
		rd.br = bufio.NewReaderSize(z, readBufSize)
		rd.compression = "gzip"
	}
	if err := rd.readFileHeader(); err != nil {
		rd.Close()
		return nil, err
	}
	return rd, nil
}

// zstdStream hands out every byte the zstd decoder has decoded before it
// fails. The decoder decodes a frame's last block, then reads the frame
// checksum; when the checksum is missing (a cut file) or wrong, Read
// returns the error and keeps the block, handing it out only on a later
// Read. Here that block comes first and the error after it, so every
// pcapng block the damaged frame holds is still read, and the error says
// that it was the checksum.
type zstdStream struct {
	d    *zstd.Decoder
	err  error
	held bool // a block came after err: err is the frame checksum's
}

func (z *zstdStream) Read(p []byte) (int, error) {
	if z.err == nil {
		n, err := z.d.Read(p)
		if err == nil || err == io.EOF {
			return n, err
		}
		z.err = err
		if n > 0 {
			return n, nil
		}
	}
	if n, _ := z.d.Read(p); n > 0 {
		if !z.held {
			z.held = true
			switch {
			case errors.Is(z.err, zstd.ErrCRCMismatch):
				// Reader.ioErr says what it means for the frames.
			case errors.Is(z.err, io.ErrUnexpectedEOF):
				z.err = fmt.Errorf("the input ends inside the checksum that ends the last zstd frame, all of whose data was read: %w", z.err)
			}
		}
		return n, nil
	}
	return 0, z.err
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Close releases the decompressor. It does not close the underlying reader.
func (r *Reader) Close() error {
	if r.closer != nil {
		c := r.closer
		r.closer = nil
		return c.Close()
	}
	return nil
}

// Compression returns "zstd", "gzip" or "none".
func (r *Reader) Compression() string { return r.compression }

// Format returns "pcapng" or "pcap".
func (r *Reader) Format() string {
	if r.pcapng {
		return "pcapng"
	}
	return "pcap"
}

// Section returns the current pcapng section header (zero for pcap).
func (r *Reader) Section() Section { return r.section }

// Interfaces returns the interfaces of the current section seen so far.
func (r *Reader) Interfaces() []Interface { return r.ifaces }

// Stats returns the interface statistics blocks seen so far; a file our
// Writer closed cleanly ends with one.
func (r *Reader) Stats() []Stats { return r.stats }

// SetIMP2Families names the netlink families whose frames are imp2, so
// that a frame whose file states no direction gets the one its imp2
// message type implies (IMP2Direction). The default is
// imp2.DefaultFamily (31); call it before the first Next. Frames of other
// families are never given a direction from their type.
func (r *Reader) SetIMP2Families(families ...uint16) {
	r.imp2Fam = append(r.imp2Fam[:0], families...)
}

// Offset returns how many bytes of the decompressed stream were consumed.
func (r *Reader) Offset() int64 { return r.off }

func (r *Reader) fail(off int64, msg string, err error) error {
	r.err = &Error{Offset: off, Frames: r.frames, Msg: msg, Err: err, Compressed: r.compression != "none"}
	return r.err
}

func (r *Reader) formatErr(off int64, format string, args ...any) error {
	return r.fail(off, fmt.Sprintf(format, args...), ErrFormat)
}

// ioErr classifies an error from the decompressed stream: an early end is
// ErrTruncated, anything else (a corrupt compressed stream) ErrFormat.
func (r *Reader) ioErr(off int64, what string, have, want int, err error) error {
	if errors.Is(err, zstd.ErrCRCMismatch) {
		// The decoder hands a zstd frame's data out before the checksum
		// that ends it, which imp2-record writes once, at the end of
		// the file: what was read cannot be held back until it is known.
		return r.fail(off, fmt.Sprintf("zstd frame checksum mismatch: the frames decoded from that zstd frame "+
			"(up to all %d read, in a file written as one frame as imp2-record does) may be corrupt", r.frames),
			fmt.Errorf("%w: %w", ErrFormat, err))
	}
	msg := fmt.Sprintf("%s: %d of %d bytes present", what, have, want)
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return r.fail(off, msg, fmt.Errorf("%w: %w", ErrTruncated, err))
	}
	return r.fail(off, msg, fmt.Errorf("%w: %s stream: %w", ErrFormat, r.compression, err))
}

// read returns the next n bytes of the decompressed stream. The slice is
// valid until the next read.
func (r *Reader) read(n int, what string) ([]byte, error) {
	var b []byte
	var err error
	if n <= r.br.Size() {
		b, err = r.br.Peek(n)
		if err == nil {
			r.br.Discard(n)
		}
	} else {
		if cap(r.big) < n {
			r.big = make([]byte, n)
		}
		b = r.big[:n]
		var m int
		m, err = io.ReadFull(r.br, b)
		b = b[:m]
	}
	if err != nil {
		return nil, r.ioErr(r.off, what, len(b), n, err)
	}
	r.off += int64(n)
	return b, nil
}

func (r *Reader) readFileHeader() error {
	m, err := r.br.Peek(4)
	if len(m) < 4 {
		return r.ioErr(0, "magic number", len(m), 4, err)
	}
	switch {
	case le.Uint32(m) == blockSHB:
		r.pcapng = true
		_, _, err := r.step()
		return err
	}
	var bo binary.ByteOrder
	switch magic := le.Uint32(m); magic {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return r.formatErr(0, "unknown magic %02x %02x %02x %02x (want pcapng, pcap, zstd or gzip)", m[0], m[1], m[2], m[3])
	}
	h, err := r.read(24, "pcap file header")
	if err != nil {
		return err
	}
	r.bo = bo
	r.nsec = bo.Uint32(h) == 0xa1b23c4d
	link := bo.Uint32(h[20:])
	ifc := Interface{LinkType: uint16(link & 0xffff), SnapLen: bo.Uint32(h[16:]), TSResol: 6, mul: 1000}
	if r.nsec {
		ifc.TSResol, ifc.mul = 9, 1
	}
	if link&0x03ffffff != LinkTypeNetlink {
		return r.fail(0, fmt.Sprintf("pcap link type %d", link&0x03ffffff), ErrLinkType)
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// Next returns the next frame. Frame.Data aliases the reader's buffer and
// is valid only until the next call to Next.
func (r *Reader) Next() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	if !r.pcapng {
		return r.nextPcap()
	}
	for {
		f, ok, err := r.step()
		if err != nil || ok {
			return f, err
		}
	}
}

func (r *Reader) nextPcap() (Frame, error) {
	start := r.off
	if _, err := r.br.Peek(1); err == io.EOF {
		r.err = io.EOF
		return Frame{}, io.EOF
	}
	h, err := r.read(16, "pcap record header")
	if err != nil {
		return Frame{}, err
	}
	bo := r.bo
	sec, frac, incl, orig := bo.Uint32(h), bo.Uint32(h[4:]), bo.Uint32(h[8:]), bo.Uint32(h[12:])
	if incl > MaxBlockLen {
		return Frame{}, r.formatErr(start, "pcap record captured length %d above the limit %d", incl, MaxBlockLen)
	}
	if incl < PseudoHeaderLen {
		return Frame{}, r.formatErr(start, "pcap record of %d bytes is shorter than the netlink pseudo-header", incl)
	}
	data, err := r.read(int(incl), "pcap record data")
	if err != nil {
		r.err.(*Error).Offset = start
		return Frame{}, err
	}
	t := int64(sec) * 1e9
	if r.nsec {
		t += int64(frac)
	} else {
		t += int64(frac) * 1000
	}
	r.frames++
	return r.makeFrame(t, data, orig, 0, 0), nil
}

// makeFrame builds a frame from the pseudo-header and the netlink bytes in
// data; flags is the EPB's epb_flags (0 if absent). See Direction for
// where the direction comes from.
func (r *Reader) makeFrame(t int64, data []byte, orig uint32, drops uint64, flags uint32) Frame {
	pt := binary.BigEndian.Uint16(data[0:])
	fam := binary.BigEndian.Uint16(data[14:])
	nl := data[PseudoHeaderLen:]
	d := DirUnknown
	switch flags & 3 {
	case epbInbound:
		d = ToUser
	case epbOutbound:
		d = ToKernel
	default:
		for _, f := range r.imp2Fam {
			if f == fam {
				d = IMP2Direction(nl)
				break
			}
		}
	}
	if d == DirUnknown {
		switch pt {
		case packetUser:
			d = ToUser
		case packetKernel:
			d = ToKernel
		}
	}
	ol := int(orig) - PseudoHeaderLen
	if ol < len(nl) {
		ol = len(nl)
	}
	return Frame{
		Time:       t,
		Direction:  d,
		PacketType: pt,
		Family:     fam,
		DropCount:  drops,
		Data:       nl,
		OrigLen:    ol,
	}
}

// foreign returns the error for a packet on interface id, which has
// another link type than LINKTYPE_NETLINK.
func (r *Reader) foreign(start int64, id uint32) error {
	return r.fail(start, fmt.Sprintf("packet for interface %d, which has link type %d", id, r.ifaces[id].LinkType), ErrLinkType)
}

// step reads one pcapng block; ok reports whether it was a packet.
func (r *Reader) step() (Frame, bool, error) {
	start := r.off
	hdr, err := r.br.Peek(12)
	if len(hdr) == 0 && err == io.EOF {
		r.err = io.EOF
		return Frame{}, false, io.EOF
	}
	if len(hdr) < 8 {
		return Frame{}, false, r.ioErr(start, "block header", len(hdr), 8, err)
	}
	typ := le.Uint32(hdr) // the SHB type is a palindrome: any order matches
	if typ == blockSHB {
		if len(hdr) < 12 {
			return Frame{}, false, r.ioErr(start, "section header", len(hdr), 12, err)
		}
		switch le.Uint32(hdr[8:]) {
		case bom:
			r.bo = binary.LittleEndian
		case 0x4D3C2B1A:
			r.bo = binary.BigEndian
		default:
			return Frame{}, false, r.formatErr(start, "section header with bad byte-order magic % x", hdr[8:12])
		}
	} else if r.bo == nil {
		return Frame{}, false, r.formatErr(start, "pcapng input does not start with a section header")
	} else {
		typ = r.bo.Uint32(hdr)
	}
	bo := r.bo
	blen := bo.Uint32(hdr[4:])
	if blen < 12 || blen%4 != 0 || blen > MaxBlockLen {
		return Frame{}, false, r.formatErr(start, "block type %#x with length %d (want a multiple of 4 in [12, %d])", typ, blen, MaxBlockLen)
	}
	b, err := r.read(int(blen), "block")
	if err != nil {
		r.err.(*Error).Offset = start
		return Frame{}, false, err
	}
	if bo.Uint32(b[blen-4:]) != blen {
		return Frame{}, false, r.formatErr(start, "block type %#x: trailing length %d differs from leading length %d", typ, bo.Uint32(b[blen-4:]), blen)
	}
	body := b[8 : blen-4]
	switch typ {
	case blockEPB:
		return r.enhancedPacket(start, blen, bo, body)
	case blockSPB:
		return r.simplePacket(start, blen, bo, body)
	case blockIDB:
		err = r.interfaceDescription(start, blen, bo, body)
	case blockISB:
		err = r.interfaceStatistics(start, blen, bo, body)
	case blockSHB:
		err = r.sectionHeader(start, blen, bo, body)
	}
	return Frame{}, false, err
}

// enhancedPacket decodes an EPB at offset start into a frame.
func (r *Reader) enhancedPacket(start int64, blen uint32, bo binary.ByteOrder, body []byte) (Frame, bool, error) {
	if len(body) < 20 {
		return Frame{}, false, r.formatErr(start, "enhanced packet block of %d bytes", blen)
	}
	id := bo.Uint32(body)
	if id >= uint32(len(r.ifaces)) {
		return Frame{}, false, r.formatErr(start, "packet for undeclared interface %d", id)
	}
	if r.ifaces[id].LinkType != LinkTypeNetlink {
		return Frame{}, false, r.foreign(start, id)
	}
	ts := uint64(bo.Uint32(body[4:]))<<32 | uint64(bo.Uint32(body[8:]))
	caplen, orig := bo.Uint32(body[12:]), bo.Uint32(body[16:])
	rest := body[20:]
	if uint64(caplen) > uint64(len(rest)) {
		return Frame{}, false, r.formatErr(start, "captured length %d exceeds the block", caplen)
	}
	if caplen < PseudoHeaderLen {
		return Frame{}, false, r.formatErr(start, "packet of %d bytes is shorter than the netlink pseudo-header", caplen)
	}
	data := rest[:caplen]
	var drops uint64
	var flags uint32
	opts := rest[min(len(rest), int(caplen+3)&^3):]
	err := walkOptions(bo, opts, func(code uint16, v []byte) {
		switch {
		case code == 2 && len(v) == 4:
			flags = bo.Uint32(v)
		case code == 4 && len(v) == 8:
			drops = bo.Uint64(v)
		}
	})
	if err != nil {
		return Frame{}, false, r.formatErr(start, "enhanced packet block options: %v", err)
	}
	r.frames++
	return r.makeFrame(r.ifaces[id].ns(ts), data, orig, drops, flags), true, nil
}

// simplePacket decodes an SPB (always interface 0) into a frame.
func (r *Reader) simplePacket(start int64, blen uint32, bo binary.ByteOrder, body []byte) (Frame, bool, error) {
	if len(r.ifaces) == 0 {
		return Frame{}, false, r.formatErr(start, "simple packet block without an interface")
	}
	if r.ifaces[0].LinkType != LinkTypeNetlink {
		return Frame{}, false, r.foreign(start, 0)
	}
	if len(body) < 4 {
		return Frame{}, false, r.formatErr(start, "simple packet block of %d bytes", blen)
	}
	orig := bo.Uint32(body)
	data := body[4:]
	if uint32(len(data)) > orig {
		data = data[:orig]
	}
	if snap := r.ifaces[0].SnapLen; snap != 0 && uint32(len(data)) > snap {
		data = data[:snap]
	}
	if len(data) < PseudoHeaderLen {
		return Frame{}, false, r.formatErr(start, "packet of %d bytes is shorter than the netlink pseudo-header", len(data))
	}
	r.frames++
	return r.makeFrame(0, data, orig, 0, 0), true, nil
}

// interfaceDescription adds an IDB's interface; one of another link type is
// kept, so that the ids of the others stay right, and used by no frame.
func (r *Reader) interfaceDescription(start int64, blen uint32, bo binary.ByteOrder, body []byte) error {
	if len(body) < 8 {
		return r.formatErr(start, "interface description block of %d bytes", blen)
	}
	if len(r.ifaces) >= MaxInterfaces {
		return r.formatErr(start, "more than %d interfaces", MaxInterfaces)
	}
	ifc := Interface{LinkType: bo.Uint16(body), SnapLen: bo.Uint32(body[4:]), TSResol: 6, mul: 1000}
	if ifc.LinkType != LinkTypeNetlink {
		// Kept so that the interface ids of the others stay right;
		// its options are not ours to judge.
		r.ifaces = append(r.ifaces, ifc)
		return nil
	}
	var bad error
	err := walkOptions(bo, body[8:], func(code uint16, v []byte) {
		switch code {
		case 2:
			ifc.Name = string(v)
		case 3:
			ifc.Description = string(v)
		case optComment:
			if ifc.Comment == "" {
				ifc.Comment = string(v)
			}
		case 9:
			if len(v) == 1 {
				ifc.TSResol = v[0]
				if e := ifc.setResol(v[0]); e != nil {
					bad = e
				}
			}
		case 14:
			if len(v) == 8 {
				ifc.offset = int64(bo.Uint64(v)) * 1e9
			}
		}
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return r.formatErr(start, "interface description block: %v", err)
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// interfaceStatistics keeps an ISB of a netlink interface.
func (r *Reader) interfaceStatistics(start int64, blen uint32, bo binary.ByteOrder, body []byte) error {
	if len(body) < 12 {
		return r.formatErr(start, "interface statistics block of %d bytes", blen)
	}
	id := bo.Uint32(body)
	if id >= uint32(len(r.ifaces)) {
		return r.formatErr(start, "statistics for undeclared interface %d", id)
	}
	if r.ifaces[id].LinkType != LinkTypeNetlink {
		return nil // statistics of a skipped interface
	}
	ifc := &r.ifaces[id]
	ts := func(v []byte) int64 { return ifc.ns(uint64(bo.Uint32(v))<<32 | uint64(bo.Uint32(v[4:]))) }
	s := Stats{Interface: int(id), Time: ts(body[4:])}
	err := walkOptions(bo, body[12:], func(code uint16, v []byte) {
		if len(v) != 8 {
			return
		}
		switch code {
		case 2:
			s.Start = ts(v)
		case 3:
			s.End = ts(v)
		case 4:
			s.Received, s.HasRecv = bo.Uint64(v), true
		case 5:
			s.Dropped, s.HasDropped = bo.Uint64(v), true
		}
	})
	if err != nil {
		return r.formatErr(start, "interface statistics block: %v", err)
	}
	if len(r.stats) < MaxInterfaces {
		r.stats = append(r.stats, s)
	}
	return nil
}

// sectionHeader starts a new section: its interfaces start again.
func (r *Reader) sectionHeader(start int64, blen uint32, bo binary.ByteOrder, body []byte) error {
	if len(body) < 16 {
		return r.formatErr(start, "section header block of %d bytes", blen)
	}
	if major := bo.Uint16(body[4:]); major != 1 {
		return r.formatErr(start, "pcapng major version %d", major)
	}
	s := Section{BigEndian: bo == binary.BigEndian}
	err := walkOptions(bo, body[16:], func(code uint16, v []byte) {
		switch code {
		case 2:
			s.Hardware = string(v)
		case 3:
			s.OS = string(v)
		case 4:
			s.Application = string(v)
		case optComment:
			if s.Comment == "" {
				s.Comment = string(v)
			}
		}
	})
	if err != nil {
		return r.formatErr(start, "section header block: %v", err)
	}
	r.section = s
	r.ifaces = r.ifaces[:0]
	return nil
}

// walkOptions calls fn for each option until opt_endofopt or the end.
func walkOptions(bo binary.ByteOrder, b []byte, fn func(code uint16, v []byte)) error {
	for len(b) >= 4 {
		code, n := bo.Uint16(b), int(bo.Uint16(b[2:]))
		if code == optEnd {
			return nil
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(b) {
			return fmt.Errorf("option %d of length %d runs past the block", code, n)
		}
		fn(code, b[4:4+n])
		b = b[4+padded:]
	}
	return nil
}

func (ifc *Interface) setResol(v uint8) error {
	ifc.mul, ifc.div, ifc.pow2 = 0, 0, false
	if v&0x80 != 0 {
		ifc.pow2, ifc.shift = true, uint(v&0x7f)
		if ifc.shift > 63 {
			return fmt.Errorf("if_tsresol 2^-%d", ifc.shift)
		}
		return nil
	}
	switch {
	case v <= 9:
		ifc.mul = pow10(9 - v)
	case v <= 18:
		ifc.div = pow10(v - 9)
	default:
		return fmt.Errorf("if_tsresol 10^-%d", v)
	}
	return nil
}

func pow10(n uint8) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// ns converts a timestamp in interface units to ns since the epoch.
func (ifc *Interface) ns(ts uint64) int64 {
	var t uint64
	switch {
	case ifc.pow2:
		hi, lo := bits.Mul64(ts, 1e9)
		if ifc.shift == 0 {
			t = lo
		} else {
			t = hi<<(64-ifc.shift) | lo>>ifc.shift
		}
	case ifc.div != 0:
		t = ts / ifc.div
	default:
		t = ts * ifc.mul
	}
	return int64(t) + ifc.offset
}
