package pcapnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression selects how Writer compresses the pcapng stream.
type Compression int

const (
	// Zstd compresses with zstd (the default).
	Zstd Compression = iota
	// None writes the capture format as it is.
	None
	// Gzip compresses with gzip (GzipLevel), for tools that take gzip
	// but not zstd; every flush is a gzip sync flush, so a cut file
	// decompresses up to its last flush like a zstd one.
	Gzip
)

// Defaults of WriterOptions.
const (
	DefaultFlushInterval = time.Second
	DefaultFlushBytes    = 64 << 10
	DefaultSnapLen       = 262144 // as tcpdump
	DefaultInterface     = "imp2"
	DefaultFamily        = 31 // NL_IMP2; only used for the interface description
)

// MaxSnapLen bounds WriterOptions.SnapLen; Reader also refuses interfaces
// and blocks above its own MaxBlockLen.
const MaxSnapLen = 1 << 20

// WriterOptions configure a Writer. The zero value is usable: zstd pcapng,
// flush every second or 64 KiB, interface "imp2". FormatFor gives the
// Format and Compression a file name asks for.
type WriterOptions struct {
	// Format: Pcapng (default) or Pcap (classic; see Format.Loses).
	Format Format
	// Compression: Zstd (default), Gzip or None.
	Compression Compression
	// ZstdLevel is the klauspost/compress encoder level; zero means
	// zstd.SpeedDefault (roughly zstd -3). zstd.SpeedFastest, speed
	// first, also leaves the literals without Huffman coding: on imp2
	// events that took 9-16% of the compression's CPU, for the same size
	// on nlsend's flood and 6% more on varied events (hosts, times, queue
	// figures), which compress 5:1 where the flood does 35:1.
	ZstdLevel zstd.EncoderLevel
	// GzipLevel is the gzip level; zero means gzip.DefaultCompression.
	GzipLevel int
	// FramePerFlush closes the zstd frame (gzip member) at every flush and
	// starts a new one, instead of only ending a block. Every flushed prefix
	// of the file is then a complete zstd (gzip) stream (zstd -d exits 0 on
	// it), at the price
	// of restarting the compression history at each flush; see the package
	// tests for the measured size cost. Default false.
	FramePerFlush bool

	// FlushInterval bounds how long a written frame may stay in memory:
	// a background goroutine flushes when this much time has passed and
	// data is pending. Zero means DefaultFlushInterval; negative disables
	// time-based flushing.
	FlushInterval time.Duration
	// FlushBytes bounds how many uncompressed pcapng bytes may be pending
	// before a flush. Zero means DefaultFlushBytes (64 KiB); negative
	// disables it. Up to 128 KiB (the zstd block size) every zstd block
	// ends on a pcapng block boundary, so a file cut anywhere decompresses
	// to whole pcapng blocks and tshark reads it without complaint; above
	// that, a cut may fall inside a packet (tshark still shows all frames
	// before it, then reports the cut).
	FlushBytes int
	// Queue, if positive, is the size in bytes of a queue that moves the
	// compression and the output to a goroutine of the Writer: WriteFrame
	// then only encodes, into chunks of the queue, and hands a chunk over
	// when it is full or when FlushInterval passes. The flush points and
	// so the crash tolerance are the same as without it. WriteFrame waits
	// when every chunk is queued (QueueStats counts the waits); an output
	// error is returned by the next call. Flush and Close still return
	// once the data reached the underlying writer.
	Queue int

	// Section header block.
	OS          string // shb_os; default runtime GOOS/GOARCH
	Application string // shb_userappl; default "imp2 pcapnl"
	Comment     string // SHB opt_comment; optional

	// Interface description block.
	Interface   string // if_name; default "imp2"
	Description string // if_description; optional
	// Family is the netlink family recorded on this interface, written into
	// the IDB comment ("netlink family 31"). Frames carry their own family;
	// zero means DefaultFamily.
	Family uint16
	// SnapLen is the snap length in bytes of pseudo-header plus netlink
	// data; longer frames are truncated (their original length is kept).
	// Zero means DefaultSnapLen; at most MaxSnapLen.
	SnapLen int
}

// Writer writes netlink frames to a pcapng (or classic pcap) stream. It is
// safe for concurrent use; the hot path takes one uncontended mutex,
// encodes the block into an internal buffer and does not allocate.
//
// Crash tolerance: data is flushed (the internal buffer handed to the zstd
// encoder, the current zstd block ended and written to the underlying
// writer) every FlushInterval and every FlushBytes. Flushes fall on pcapng
// block boundaries. If the process dies, the file holds a zstd frame without
// its end mark (or, with FramePerFlush, complete frames followed by a partial
// one). Measured with tshark 4.0.17 (Debian 12) on files of killed writers:
// tshark decodes a truncated zstd stream up to its last complete block; with
// FlushBytes ≤ 128 KiB (the default) that is a pcapng block boundary, so it
// shows every flushed frame and exits 0 (a cut inside a packet, possible
// with larger FlushBytes or an uncompressed file, makes it print "appears to
// have been cut short in the middle of a packet" and exit 2, after showing
// the frames). zstd -d writes the data of all complete blocks and reports
// "premature end" (exit 1); our Reader returns every complete frame and then
// an error wrapping ErrTruncated. The data is in the kernel's page cache once
// a flush returns; Writer never calls fsync.
//
// If the underlying writer has a Flush() error method (bufio.Writer), it is
// called at each flush. Close does not close the underlying writer.
type Writer struct {
	mu      sync.Mutex
	st      *stage
	q       *queue // nil: the stage runs in the caller
	buf     []byte
	limit   int // buf is drained before it grows past this; its capacity holds one more block
	pending int // uncompressed bytes written since the last flush
	err     error

	snaplen    int
	flushBytes int

	frames, drops  uint64
	first, last    int64
	haveStats      bool
	recv, dropStat uint64

	pcap bool // classic pcap records instead of pcapng blocks

	stop chan struct{}
	done chan struct{}
}

var le = binary.LittleEndian

const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 1
	blockSPB = 3
	blockISB = 5
	blockEPB = 6

	bom = 0x1A2B3C4D

	optEnd     = 0
	optComment = 1

	epbHeaderLen = 28 // type, length, interface, ts hi, ts lo, caplen, origlen
	epbFlagsLen  = 8  // epb_flags option
	epbDropsLen  = 12 // epb_dropcount option
	epbTailLen   = 8  // opt_endofopt and trailing block length

	bufSize = 64 << 10

	// zstdWindow is the encoder's window. Netlink frames repeat within a
	// few blocks, not megabytes: on a million imp2 events (varied hosts and
	// times, and nlsend's flood) a 128 KiB window took 6-16% less CPU than
	// the levels' default (4-8 MiB) at the same size within 1% (3% smaller
	// for the varied events at SpeedFastest), and keeps the encoder's
	// history in the cache it shares with the receive loop.
	zstdWindow = 128 << 10
)

// NewWriter writes the section header and interface description to w and
// returns a Writer for the frames. The header is flushed at once, so even a
// writer killed before its first frame leaves a file tshark opens.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	if opts.SnapLen == 0 {
		opts.SnapLen = DefaultSnapLen
	}
	if opts.SnapLen < PseudoHeaderLen || opts.SnapLen > MaxSnapLen {
		return nil, fmt.Errorf("pcapnl: snap length %d out of range [%d, %d]", opts.SnapLen, PseudoHeaderLen, MaxSnapLen)
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.FlushBytes == 0 {
		opts.FlushBytes = DefaultFlushBytes
	}
	if opts.FlushBytes < 0 {
		opts.FlushBytes = int(^uint(0) >> 1)
	}
	if opts.OS == "" {
		opts.OS = runtime.GOOS + "/" + runtime.GOARCH
	}
	if opts.Application == "" {
		opts.Application = "imp2 pcapnl"
	}
	if opts.Interface == "" {
		opts.Interface = DefaultInterface
	}
	if opts.Family == 0 {
		opts.Family = DefaultFamily
	}
	maxBlock := epbHeaderLen + opts.SnapLen + 3 + epbFlagsLen + epbDropsLen + epbTailLen
	wr := &Writer{
		st:         &stage{out: w, dst: w, framePerFlush: opts.FramePerFlush},
		snaplen:    opts.SnapLen,
		flushBytes: opts.FlushBytes,
		limit:      bufSize,
		buf:        make([]byte, 0, bufSize+maxBlock),
	}
	wr.st.outF, _ = w.(interface{ Flush() error })
	zw, err := newCompressor(w, &opts)
	if err != nil {
		return nil, err
	}
	if zw != nil {
		wr.st.zw, wr.st.dst = zw, zw
	}

	switch opts.Format {
	case Pcapng:
		wr.buf = appendSHB(wr.buf, &opts)
		wr.buf = appendIDB(wr.buf, &opts)
	case Pcap:
		wr.pcap = true
		wr.buf = appendPcapHeader(wr.buf, opts.SnapLen)
	default:
		return nil, fmt.Errorf("pcapnl: unknown format %d", opts.Format)
	}
	wr.pending = len(wr.buf)
	if err := wr.flushLocked(); err != nil {
		return nil, err
	}
	if opts.Queue > 0 {
		wr.q = newQueue(wr.st, opts.Queue, maxBlock)
		wr.buf, wr.limit = wr.q.take(wr.buf), wr.q.chunkSize
	}
	if opts.FlushInterval > 0 {
		wr.stop = make(chan struct{})
		wr.done = make(chan struct{})
		go wr.ticker(opts.FlushInterval)
	}
	return wr, nil
}

// newCompressor makes the compressor opts ask for, writing to w; nil for
// None.
func newCompressor(w io.Writer, opts *WriterOptions) (compressor, error) {
	switch opts.Compression {
	case Zstd:
		level := opts.ZstdLevel
		if level == 0 {
			level = zstd.SpeedDefault
		}
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderLevel(level),
			zstd.WithWindowSize(zstdWindow),
			// One goroutine: blocks are compressed synchronously inside
			// Write/Flush, so a returned Flush means the bytes reached w.
			zstd.WithEncoderConcurrency(1),
			zstd.WithNoEntropyCompression(level == zstd.SpeedFastest))
		if err != nil {
			return nil, fmt.Errorf("pcapnl: zstd: %w", err)
		}
		return zw, nil
	case Gzip:
		level := opts.GzipLevel
		if level == 0 {
			level = gzip.DefaultCompression
		}
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, fmt.Errorf("pcapnl: gzip: %w", err)
		}
		return zw, nil
	case None:
		return nil, nil
	}
	return nil, fmt.Errorf("pcapnl: unknown compression %d", opts.Compression)
}

func (w *Writer) ticker(d time.Duration) {
	defer close(w.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if w.pending > 0 && w.err == nil && w.flushLocked() == nil && w.q != nil {
				w.buf = w.q.handOver(w.buf, nil)
			}
			w.mu.Unlock()
		}
	}
}

// WriteFrame appends one frame. f.OrigLen is ignored; frames longer than the
// snap length are truncated and their full length recorded. f is not
// retained.
func (w *Writer) WriteFrame(f *Frame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ready(); err != nil {
		return err
	}
	return w.appendFrame(f)
}

// WriteFrames appends fs in order, as WriteFrame does each, under one lock
// and one error check for the whole batch: the receive loop of a recorder
// hands over what one recvmmsg returned. It returns how many frames it
// wrote before the first error, and that error.
func (w *Writer) WriteFrames(fs []Frame) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ready(); err != nil {
		return 0, err
	}
	for i := range fs {
		if err := w.appendFrame(&fs[i]); err != nil {
			return i, err
		}
	}
	return len(fs), nil
}

// ready returns the error that ends writing, the queue's included; the
// caller holds mu.
func (w *Writer) ready() error {
	if w.q != nil && w.err == nil {
		w.err = w.q.error()
	}
	return w.err
}

// appendFrame encodes f as an enhanced packet block (or a classic pcap
// record) into buf, draining it first when the block would not fit and
// flushing when FlushBytes are pending; the caller holds mu.
func (w *Writer) appendFrame(f *Frame) error {
	if w.pcap {
		return w.appendPcap(f)
	}
	origLen := len(f.Data) + PseudoHeaderLen
	capLen := min(origLen, w.snaplen)
	padded := (capLen + 3) &^ 3
	total := epbHeaderLen + padded + epbFlagsLen + epbTailLen
	if f.DropCount != 0 {
		total += epbDropsLen
	}
	if len(w.buf)+total > w.limit {
		if err := w.drain(); err != nil {
			return err
		}
	}
	n := len(w.buf)
	w.buf = w.buf[:n+total]
	b := w.buf[n:]
	// Fixed-size views of the block's head and tail: one bounds check
	// each rather than one per field (the hot path of a recorder).
	h := (*[epbHeaderLen + PseudoHeaderLen]byte)(b)
	le.PutUint32(h[0:], blockEPB)
	le.PutUint32(h[4:], uint32(total))
	le.PutUint32(h[8:], 0) // interface 0
	le.PutUint32(h[12:], uint32(uint64(f.Time)>>32))
	le.PutUint32(h[16:], uint32(uint64(f.Time)))
	le.PutUint32(h[20:], uint32(capLen))
	le.PutUint32(h[24:], uint32(origLen))
	binary.BigEndian.PutUint16(h[28:], packetType(f))
	binary.BigEndian.PutUint16(h[30:], ARPHRDNetlink)
	clear(h[32:42]) // sll_halen, sll_addr
	binary.BigEndian.PutUint16(h[42:], f.Family)
	data := b[epbHeaderLen+PseudoHeaderLen : epbHeaderLen+padded]
	clear(data[copy(data, f.Data[:capLen-PseudoHeaderLen]):]) // the padding
	o := epbHeaderLen + padded
	opt := (*[epbFlagsLen]byte)(b[o:])
	le.PutUint32(opt[0:], 2|4<<16) // epb_flags, 4 bytes
	le.PutUint32(opt[4:], epbFlags(f.Direction))
	if f.DropCount != 0 {
		d := (*[epbDropsLen]byte)(b[o+epbFlagsLen:])
		le.PutUint32(d[0:], 4|8<<16) // epb_dropcount, 8 bytes
		le.PutUint64(d[4:], f.DropCount)
	}
	end := (*[epbTailLen]byte)(b[len(b)-epbTailLen:])
	le.PutUint32(end[0:], optEnd)
	le.PutUint32(end[4:], uint32(total))
	return w.account(f, total)
}

// account counts f, written as total bytes, and flushes when FlushBytes
// are pending.
func (w *Writer) account(f *Frame, total int) error {
	if w.frames == 0 {
		w.first = f.Time
	}
	w.last = f.Time
	w.frames++
	w.drops += f.DropCount
	w.pending += total
	if w.pending >= w.flushBytes {
		return w.flushLocked()
	}
	return nil
}

// epbFlags maps a direction to the pcapng epb_flags inbound/outbound bits;
// 0 says nothing.
func epbFlags(d Direction) uint32 {
	switch d {
	case ToUser:
		return epbInbound
	case ToKernel:
		return epbOutbound
	}
	return 0
}

// packetType is the pseudo-header packet type written for f: the SLL
// convention for a known direction, as every earlier version wrote it,
// and the frame's own packet type otherwise (a copy of an nlmon capture
// keeps its 4).
func packetType(f *Frame) uint16 {
	switch f.Direction {
	case ToUser:
		return packetHost
	case ToKernel:
		return packetOutgoing
	}
	return f.PacketType
}

// drain hands the internal buffer to the compressor (or the output), or to
// the queue.
func (w *Writer) drain() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.q != nil {
		w.buf = w.q.handOver(w.buf, nil)
		w.err = w.q.error()
		return w.err
	}
	err := w.st.write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
	}
	return w.err
}

// flushLocked ends the current zstd block (or frame) after the frames
// written so far; with a queue it only marks the place for the goroutine.
func (w *Writer) flushLocked() error {
	if w.q != nil {
		w.q.markFlush(len(w.buf), w.frames)
		w.pending = 0
		return nil
	}
	if err := w.drain(); err != nil {
		return err
	}
	if err := w.st.flush(); err != nil {
		w.err = err
		return err
	}
	w.st.framesOut.Store(w.frames)
	w.pending = 0
	return nil
}

// Flush writes everything written so far to the underlying writer, ending
// the current zstd block (or frame, with FramePerFlush).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.flushLocked(); err != nil || w.q == nil {
		return err
	}
	done := make(chan struct{})
	w.buf = w.q.handOver(w.buf, done)
	<-done
	w.err = w.q.error()
	return w.err
}

// SetInterfaceStats sets the isb_ifrecv and isb_ifdrop counters written at
// Close (for instance the kernel's own counters). Without it Close writes
// frames written plus drop counts as received, and the sum of the frames'
// DropCount as dropped.
func (w *Writer) SetInterfaceStats(received, dropped uint64) {
	w.mu.Lock()
	w.haveStats, w.recv, w.dropStat = true, received, dropped
	w.mu.Unlock()
}

// Frames returns the number of frames written and the sum of their drop
// counts. After an output error some of them never reached the output:
// FramesOut tells how many did.
func (w *Writer) Frames() (frames, drops uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames, w.drops
}

// FramesOut returns how many of the frames written the underlying writer
// has accepted, as of the last flush that succeeded (all of them once Close
// succeeded). After an output error it is what a reader finds in a zstd
// stream (cut after its last complete block); an uncompressed output may
// hold a few frames more, written after that flush. Safe to call at any
// time.
func (w *Writer) FramesOut() uint64 { return w.st.framesOut.Load() }

// QueueStats reports on the queue of WriterOptions.Queue (zero without
// one).
func (w *Writer) QueueStats() QueueStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.q == nil {
		return QueueStats{}
	}
	return w.q.stats
}

// Close writes the interface statistics block (pcapng), ends the
// compressed stream and stops the flush goroutine. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if errors.Is(w.err, ErrClosed) {
		return nil
	}
	if w.err != nil {
		w.stopQueue(nil)
		return w.err
	}
	recv, drop := w.frames+w.drops, w.drops
	if w.haveStats {
		recv, drop = w.recv, w.dropStat
	}
	if len(w.buf)+128 > cap(w.buf) {
		if err := w.drain(); err != nil {
			w.stopQueue(nil)
			return err
		}
	}
	if !w.pcap { // classic pcap has no statistics record
		w.buf = appendISB(w.buf, time.Now().UnixNano(), w.frames > 0, w.first, w.last, recv, drop)
	}
	if w.q != nil {
		if w.err = w.stopQueue(w.buf); w.err != nil {
			return w.err
		}
	} else if err := w.drain(); err != nil {
		return err
	}
	if err := w.st.close(); err != nil {
		w.err = err
		return err
	}
	w.st.framesOut.Store(w.frames)
	w.err = ErrClosed
	return nil
}

// stopQueue hands b over as the last chunk and waits for the queue's
// goroutine to write everything and end.
func (w *Writer) stopQueue(b []byte) error {
	if w.q == nil {
		return nil
	}
	w.q.close(b)
	w.buf = nil
	return w.q.error()
}

// appendOpt appends a pcapng option with padding.
func appendOpt(b []byte, code uint16, v []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for i := len(v); i%4 != 0; i++ {
		b = append(b, 0)
	}
	return b
}

func appendStrOpt(b []byte, code uint16, s string) []byte {
	if s == "" {
		return b
	}
	if len(s) > 0xFFF0 {
		s = s[:0xFFF0]
	}
	return appendOpt(b, code, []byte(s))
}

// beginBlock appends a block header with a placeholder length and returns
// the start offset; endBlock fills the lengths in.
func beginBlock(b []byte, typ uint32) ([]byte, int) {
	start := len(b)
	b = le.AppendUint32(b, typ)
	b = le.AppendUint32(b, 0)
	return b, start
}

func endBlock(b []byte, start int) []byte {
	b = le.AppendUint32(b, optEnd) // opt_endofopt
	n := len(b) - start + 4
	le.PutUint32(b[start+4:], uint32(n))
	return le.AppendUint32(b, uint32(n))
}

func appendSHB(b []byte, o *WriterOptions) []byte {
	b, start := beginBlock(b, blockSHB)
	b = le.AppendUint32(b, bom)
	b = le.AppendUint16(b, 1) // major
	b = le.AppendUint16(b, 0) // minor
	b = le.AppendUint64(b, ^uint64(0))
	b = appendStrOpt(b, 3, o.OS)
	b = appendStrOpt(b, 4, o.Application)
	b = appendStrOpt(b, optComment, o.Comment)
	return endBlock(b, start)
}

func appendIDB(b []byte, o *WriterOptions) []byte {
	b, start := beginBlock(b, blockIDB)
	b = le.AppendUint16(b, LinkTypeNetlink)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, uint32(o.SnapLen))
	b = appendStrOpt(b, 2, o.Interface)
	b = appendStrOpt(b, 3, o.Description)
	b = appendOpt(b, 9, []byte{9}) // if_tsresol: 10^-9 s
	b = appendStrOpt(b, optComment, fmt.Sprintf("netlink family %d", o.Family))
	return endBlock(b, start)
}

func appendISB(b []byte, now int64, haveTimes bool, first, last int64, recv, drop uint64) []byte {
	ts := func(t int64) []byte {
		var v [8]byte
		le.PutUint32(v[0:], uint32(uint64(t)>>32))
		le.PutUint32(v[4:], uint32(uint64(t)))
		return v[:]
	}
	u64 := func(x uint64) []byte { return le.AppendUint64(nil, x) }
	b, start := beginBlock(b, blockISB)
	b = le.AppendUint32(b, 0) // interface 0
	b = append(b, ts(now)...)
	if haveTimes {
		b = appendOpt(b, 2, ts(first)) // isb_starttime
		b = appendOpt(b, 3, ts(last))  // isb_endtime
	}
	b = appendOpt(b, 4, u64(recv)) // isb_ifrecv
	b = appendOpt(b, 5, u64(drop)) // isb_ifdrop
	return endBlock(b, start)
}
