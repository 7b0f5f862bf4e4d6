//go:build linux

package imp2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// conn is Conn on Linux.
type conn struct {
	s      *sock
	r      *receiver
	family int
	peer   uint32
	seq    atomic.Uint32
	onCtl  func(ControlDir, []byte) // Config.OnControl

	readMu  sync.Mutex // serializes reads
	pending []Message  // datagrams read while waiting for a reply, delivered first
	overrun bool       // ENOBUFS met while waiting for a reply, reported first

	statsMu  sync.Mutex    // one Stats call at a time
	statsSeq atomic.Uint32 // sequence number of the Stats request in flight, or 0
	statsCh  chan Stats

	dlMu     sync.Mutex
	deadline time.Time // the caller's read deadline

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Dial opens a netlink socket of cfg.Family, applies the options and
// registers with the peer (IMP2_U_PID).
func Dial(cfg Config) (*Conn, error) {
	if cfg.RcvBuf > MaxRcvBuf {
		return nil, fmt.Errorf("imp2: receive buffer of %d bytes: the kernel takes at most %d (MaxRcvBuf)", cfg.RcvBuf, MaxRcvBuf)
	}
	if cfg.Family == 0 {
		cfg.Family = DefaultFamily
	}
	s, err := openSock(cfg.Family, cfg.NetNS, cfg.PortID, cfg.Blocking)
	if errors.Is(err, unix.EPROTONOSUPPORT) {
		return nil, fmt.Errorf("imp2: the imp2 module is not loaded for family %d: %w", cfg.Family, err)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Connect {
		if err := s.connect(cfg.Peer); err != nil {
			s.Close()
			return nil, fmt.Errorf("imp2: connect to port %d of family %d: %w", cfg.Peer, cfg.Family, err)
		}
	}
	c := &Conn{conn{s: s, r: newReceiver(s, cfg.Connect, cfg.Peer), family: cfg.Family, peer: cfg.Peer, onCtl: cfg.OnControl, statsCh: make(chan Stats, 1)}}
	if err := c.setup(cfg); err != nil {
		s.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) setup(cfg Config) error {
	if cfg.RcvBuf > 0 {
		if err := c.s.setBuf(unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, cfg.RcvBuf, "SO_RCVBUF"); err != nil {
			return err
		}
	}
	if cfg.NoENOBUFS {
		if err := c.s.setInt(unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1, "NETLINK_NO_ENOBUFS"); err != nil {
			return err
		}
	}
	seq := c.seq.Add(1)
	var flags uint16
	if cfg.Ack {
		flags = FlagRequest | FlagAck
	}
	if err := c.sendControl(TypeRegister, flags, seq); err != nil {
		return fmt.Errorf("imp2: register with port %d of family %d: %w", c.peer, c.family, err)
	}
	if !cfg.Ack {
		return nil
	}
	timeout := cfg.AckTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.readMu.Lock()
	defer c.readMu.Unlock()
	b, err := c.readUntil(ctx, func(h Header) bool { return h.Type == unix.NLMSG_ERROR && h.Seq == seq })
	if err != nil {
		return fmt.Errorf("imp2: waiting for the registration ack from port %d: %w", c.peer, err)
	}
	if len(b) < HeaderLen+4 {
		return fmt.Errorf("imp2: registration ack: %w", ErrShort)
	}
	if e := int32(ne.Uint32(b[HeaderLen:])); e != 0 {
		return fmt.Errorf("imp2: registration refused: %w", syscall.Errno(-e))
	}
	return nil
}

// PortID returns the local port id, the consumer's identity at the peer.
func (c *Conn) PortID() uint32 { return c.s.port }

// ReadBatch blocks until at least one datagram is queued, then receives as
// many as are queued, up to len(msgs), each into msgs[i].Buf, and returns
// how many it filled. It allocates nothing. Errors: ErrOverrun (events
// were dropped; read on), os.ErrDeadlineExceeded, net.ErrClosed after Close.
// The Conn keeps the buffers of the last read referenced until a later
// read replaces them or the Conn is garbage: reading into the same ones
// each time, as a receive loop does, then sets nothing.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.overrun {
		c.overrun = false
		return 0, ErrOverrun
	}
	if len(c.pending) > 0 {
		return c.readPending(msgs), nil
	}
	n, err := c.r.read(msgs)
	if err != nil {
		return 0, c.readErr(err)
	}
	if seq := c.statsSeq.Load(); seq != 0 {
		c.passStats(msgs[:n], seq)
	}
	return n, nil
}

func (c *Conn) readErr(err error) error {
	switch {
	case c.closed.Load():
		return net.ErrClosed
	case err == unix.ENOBUFS:
		return ErrOverrun
	case errors.Is(err, os.ErrDeadlineExceeded):
		return err
	}
	if errno, ok := err.(syscall.Errno); ok {
		return os.NewSyscallError("recvmmsg", errno)
	}
	return err
}

func (c *Conn) readPending(msgs []Message) int {
	n := 0
	for n < len(msgs) && len(c.pending) > 0 {
		m, p := &msgs[n], &c.pending[0]
		m.N = copy(m.Buf, p.Buf)
		m.Truncated = m.N < len(p.Buf)
		m.PortID = p.PortID
		c.pending = c.pending[1:]
		n++
	}
	if len(c.pending) == 0 {
		c.pending = nil // release the copies
	}
	return n
}

// readUntil reads datagrams until one starts with a message match accepts,
// and returns it; everything else is kept for ReadBatch. ctx alone bounds
// the wait: the caller's read deadline is set aside until it returns. The
// caller holds readMu.
func (c *Conn) readUntil(ctx context.Context, match func(Header) bool) ([]byte, error) {
	c.s.SetReadDeadline(time.Time{})
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.s.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
		c.dlMu.Lock()
		c.s.SetReadDeadline(c.deadline)
		c.dlMu.Unlock()
	}()
	msg := []Message{{Buf: make([]byte, 1<<16)}}
	for {
		if _, err := c.r.read(msg); err != nil {
			if err == unix.ENOBUFS {
				// The kernel reports an overrun before the queued data:
				// the reply may still be there. Keep the overrun for the
				// next ReadBatch and read on.
				c.overrun = true
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, c.readErr(err)
		}
		b := bytes.Clone(msg[0].Data())
		if h, err := ParseHeader(b); err == nil && match(h) {
			if c.onCtl != nil {
				c.onCtl(ControlReceived, b)
			}
			return b, nil
		}
		c.pending = append(c.pending, Message{Buf: b, N: len(b), PortID: msg[0].PortID})
	}
}

// sendControl sends one control message of this consumer to the peer and
// shows it to Config.OnControl once the kernel has taken it.
func (c *Conn) sendControl(typ, flags uint16, seq uint32) error {
	b := AppendControl(nil, typ, flags, seq, c.s.port)
	if err := c.s.sendTo(b, c.peer); err != nil {
		return err
	}
	if c.onCtl != nil {
		c.onCtl(ControlSent, b)
	}
	return nil
}

// passStats hands the reply to a waiting Stats call; it stays in the batch.
func (c *Conn) passStats(msgs []Message, seq uint32) {
	for i := range msgs {
		b := msgs[i].Data()
		h, err := ParseHeader(b)
		if err != nil || h.Type != TypeStats || h.Seq != seq {
			continue
		}
		if s, err := ParseStats(b[HeaderLen:h.Len]); err == nil {
			select {
			case c.statsCh <- s:
			default:
			}
		}
	}
}

// Receive returns the next datagram in a new buffer. It is the simple way
// to read; ReadBatch is the fast one.
func (c *Conn) Receive() ([]byte, error) {
	msg := []Message{{Buf: make([]byte, 1<<16)}}
	if _, err := c.ReadBatch(msg); err != nil {
		return nil, err
	}
	if msg[0].Truncated {
		return nil, fmt.Errorf("imp2: datagram longer than %d bytes", len(msg[0].Buf))
	}
	return bytes.Clone(msg[0].Data()), nil
}

// Stats asks the peer for its counters (IMP2_GET_STATS) and waits for the
// IMP2_STATS reply until ctx ends; only the module and Server answer. The
// reply arrives in the receive queue with the events: a ReadBatch in
// progress passes it on (and returns it in its batch too); when none is,
// Stats reads the queue itself and keeps the events it meets for the next
// ReadBatch.
func (c *Conn) Stats(ctx context.Context) (Stats, error) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	seq := c.seq.Add(1)
	select {
	case <-c.statsCh: // a late reply to an abandoned request
	default:
	}
	c.statsSeq.Store(seq)
	defer c.statsSeq.Store(0)
	if err := c.sendControl(TypeGetStats, FlagRequest, seq); err != nil {
		return Stats{}, fmt.Errorf("imp2: stats request: %w", err)
	}
	// Read the reply ourselves whenever no ReadBatch is running; while one
	// is, it passes the reply on.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if c.readMu.TryLock() {
			defer c.readMu.Unlock()
			return c.readStats(ctx, seq)
		}
		select {
		case s := <-c.statsCh:
			return s, nil
		case <-ctx.Done():
			return Stats{}, fmt.Errorf("imp2: stats reply: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// readStats waits for the reply to request seq; the caller holds readMu.
func (c *Conn) readStats(ctx context.Context, seq uint32) (Stats, error) {
	select {
	case s := <-c.statsCh: // passed on by the last ReadBatch
		return s, nil
	default:
	}
	b, err := c.readUntil(ctx, func(h Header) bool { return h.Type == TypeStats && h.Seq == seq })
	if err != nil {
		return Stats{}, fmt.Errorf("imp2: stats reply: %w", err)
	}
	h, _ := ParseHeader(b)
	return ParseStats(b[HeaderLen:h.Len])
}

// MemInfo returns the socket's SO_MEMINFO counters.
func (c *Conn) MemInfo() (MemInfo, error) { return c.s.memInfo() }

// RcvBuf returns the receive buffer size the kernel granted (SO_RCVBUF).
func (c *Conn) RcvBuf() (int, error) { return c.s.getInt(unix.SOL_SOCKET, unix.SO_RCVBUF, "SO_RCVBUF") }

// SetReadDeadline sets the deadline for ReadBatch and Receive; the zero
// time means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.deadline = t
	return c.s.SetReadDeadline(t)
}

// Close unregisters (IMP2_CLOSE), closes the socket and wakes a blocked
// ReadBatch. Calling it again returns the first result.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err := c.sendControl(TypeClose, 0, c.seq.Add(1))
		if errors.Is(err, unix.ECONNREFUSED) {
			err = nil // the peer is gone: nothing to unregister from
		}
		c.closeErr = errors.Join(err, c.s.Close())
	})
	return c.closeErr
}
