//go:build linux

package imp2

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Server is a user-space stand-in for the module's side of the protocol,
// for emulation over NETLINK_USERSOCK: consumers register with it as with
// the module, and it sends them whole netlink frames with MSG_DONTWAIT,
// counting what their full queues refuse. Unlike the module's, its drops do
// not raise ENOBUFS at the consumer: a user-space sender gets EAGAIN itself
// and the receiver sees nothing.
//
// Control messages are served on a goroutine. A consumer is the sender
// address of its IMP2_U_PID, never the nlmsg_pid it claims.
type Server struct {
	s *sock

	mu      sync.Mutex
	all     []*consumer                 // every consumer known, in order
	set     atomic.Pointer[[]*consumer] // active consumers; replaced, never modified
	changed chan struct{}               // closed and replaced when set changes

	events, unicastOK, eagain, econnrefused, otherErr atomic.Uint64

	sendMu  sync.Mutex // guards the send scratch below
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	one     [1][]byte
	batch   [][]byte
	sent    int
	sendErr error
	sendFn  func(fd uintptr) // s.sendAll, bound once

	done chan struct{} // closed when the control goroutine ends
}

type consumer struct {
	name         unix.RawSockaddrNetlink
	fixed        bool
	active       atomic.Bool
	sent, eagain atomic.Uint64
	lastSeq      atomic.Uint32
}

// Listen opens the Server's socket and starts serving control messages.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Family == 0 {
		cfg.Family = UserSockFamily
	}
	so, err := openSock(cfg.Family, cfg.NetNS, cfg.PortID, false)
	if err != nil {
		return nil, err
	}
	s := &Server{s: so, changed: make(chan struct{}), done: make(chan struct{})}
	s.sendFn = s.sendAll
	s.set.Store(&[]*consumer{})
	if cfg.Dest != 0 {
		s.add(cfg.Dest, true)
	}
	go s.serve()
	return s, nil
}

// PortID returns the port consumers must name as their peer.
func (s *Server) PortID() uint32 { return s.s.port }

// Send sends one netlink frame to every consumer; see SendBatch.
func (s *Server) Send(frame []byte) (int, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.one[0] = frame
	n, err := s.sendLocked(s.one[:])
	s.one[0] = nil
	return n, err
}

// SendBatch sends each frame, unchanged, to every consumer with sendmmsg
// and MSG_DONTWAIT, and returns the number of frames queued, summed over
// consumers. A full queue drops the frame for that consumer and counts
// EAGAIN; a consumer whose socket is gone (ECONNREFUSED) leaves the set.
// Other errors are counted and the first is returned. It allocates nothing.
func (s *Server) SendBatch(frames [][]byte) (int, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.sendLocked(frames)
}

func (s *Server) sendLocked(frames [][]byte) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	s.events.Add(uint64(len(frames)))
	if len(frames) > len(s.hdrs) {
		s.hdrs = make([]unix.Mmsghdr, len(frames))
		s.iovs = make([]unix.Iovec, len(frames))
	}
	for i, f := range frames {
		s.iovs[i].Base = nil
		if len(f) > 0 {
			s.iovs[i].Base = &f[0]
		}
		s.iovs[i].SetLen(len(f))
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.SetIovlen(1)
		s.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrNetlink
	}
	s.batch, s.sent, s.sendErr = frames, 0, nil
	if err := s.s.RawControl(s.sendFn); err != nil {
		s.sendErr = err
	}
	for i := range frames {
		s.iovs[i].Base = nil // do not keep caller buffers alive
	}
	s.batch = nil
	return s.sent, s.sendErr
}

// sendAll runs inside RawConn.Control with s.batch set.
func (s *Server) sendAll(fd uintptr) {
	var seq uint32
	if last := s.batch[len(s.batch)-1]; len(last) >= HeaderLen {
		seq = ne.Uint32(last[8:12])
	}
	for _, c := range *s.set.Load() {
		c.lastSeq.Store(seq)
		for i := range s.batch {
			s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&c.name))
		}
		s.sendTo(fd, c)
	}
}

func (s *Server) sendTo(fd uintptr, c *consumer) {
	for off := 0; off < len(s.batch); {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[off])),
			uintptr(len(s.batch)-off), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			off += int(n)
			s.sent += int(n)
			c.sent.Add(uint64(n))
			s.unicastOK.Add(uint64(n))
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.eagain.Add(1)
			s.eagain.Add(1)
		case unix.ECONNREFUSED:
			s.econnrefused.Add(1)
			if !c.fixed {
				s.remove(c)
				return
			}
		default:
			s.otherErr.Add(1)
			if s.sendErr == nil {
				s.sendErr = os.NewSyscallError("sendmmsg", e)
			}
		}
		off++ // this frame is lost for c, as with the module
	}
}

// WaitConsumers waits until at least n consumers are in the set.
func (s *Server) WaitConsumers(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, changed := len(*s.set.Load()), s.changed
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return net.ErrClosed
		}
	}
}

// Consumers returns every consumer the Server has known, active or not, in
// the order they appeared.
func (s *Server) Consumers() []ConsumerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConsumerStats, len(s.all))
	for i, c := range s.all {
		out[i] = c.stats()
	}
	return out
}

func (c *consumer) stats() ConsumerStats {
	return ConsumerStats{
		PortID: c.name.Pid, Active: c.active.Load(), Fixed: c.fixed,
		Sent: c.sent.Load(), EAGAIN: c.eagain.Load(), LastSeq: c.lastSeq.Load(),
	}
}

// Stats returns the counters the Server reports to IMP2_GET_STATS, in the
// module's terms: Events counts frames offered, one per frame whatever the
// number of consumers.
func (s *Server) Stats() Stats {
	return Stats{
		Events: s.events.Load(), UnicastOK: s.unicastOK.Load(), EAGAIN: s.eagain.Load(),
		ECONNREFUSED: s.econnrefused.Load(), OtherErr: s.otherErr.Load(),
		Consumers: uint32(len(*s.set.Load())),
	}
}

// Close stops serving and closes the socket.
func (s *Server) Close() error {
	err := s.s.Close()
	<-s.done
	return err
}

func (s *Server) serve() {
	defer close(s.done)
	r := newReceiver(s.s)
	msgs := make([]Message, 16)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 4096)
	}
	for {
		n, err := r.read(msgs)
		if _, ok := err.(syscall.Errno); ok {
			continue // recvmmsg failed (ENOBUFS, ENOMEM): the socket is still fine
		}
		if err != nil {
			return // closed
		}
		for _, m := range msgs[:n] {
			if m.PortID != 0 && !m.Truncated {
				s.handle(m.PortID, m.Data())
			}
		}
	}
}

// handle walks the netlink messages of one datagram from port, checking
// each length as the module does.
func (s *Server) handle(port uint32, b []byte) {
	for len(b) >= HeaderLen {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		var errno syscall.Errno
		switch h.Type {
		case TypeRegister:
			s.add(port, false)
		case TypeClose:
			if !s.del(port) {
				errno = unix.ENOENT
			}
		case TypeGetStats:
			s.replyStats(port, h)
		}
		if h.Flags&FlagAck != 0 && (h.Type == TypeRegister || h.Type == TypeClose) {
			s.ack(port, b[:HeaderLen], errno)
		}
		adv := (int(h.Len) + 3) &^ 3
		if adv >= len(b) {
			return
		}
		b = b[adv:]
	}
}

func (s *Server) ack(port uint32, req []byte, errno syscall.Errno) {
	const capped = 0x100 // NLM_F_CAPPED: only the request's header follows
	h, _ := ParseHeader(req)
	b := make([]byte, HeaderLen+4, HeaderLen+4+HeaderLen)
	PutHeader(b, Header{Len: HeaderLen + 4 + HeaderLen, Type: unix.NLMSG_ERROR, Flags: capped, Seq: h.Seq, PID: port})
	ne.PutUint32(b[HeaderLen:], uint32(-int32(errno)))
	s.s.sendTo(append(b, req...), port)
}

func (s *Server) replyStats(port uint32, req Header) {
	st := s.Stats()
	s.mu.Lock()
	for _, c := range s.all {
		if c.name.Pid == port && c.active.Load() {
			cs := c.stats()
			st.SelfRegistered, st.SelfSent, st.SelfDropped, st.SelfLastSeq = true, cs.Sent, cs.EAGAIN, cs.LastSeq
		}
	}
	s.mu.Unlock()
	b := make([]byte, HeaderLen, HeaderLen+StatsLen)
	PutHeader(b, Header{Len: HeaderLen + StatsLen, Type: TypeStats, Seq: req.Seq, PID: port})
	s.s.sendTo(AppendStats(b, st), port)
}

// add puts port in the set; a port already there keeps its counters.
func (s *Server) add(port uint32, fixed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range *s.set.Load() {
		if c.name.Pid == port {
			return
		}
	}
	c := &consumer{name: unix.RawSockaddrNetlink{Family: unix.AF_NETLINK, Pid: port}, fixed: fixed}
	c.active.Store(true)
	s.all = append(s.all, c)
	s.publishLocked(append(append([]*consumer(nil), *s.set.Load()...), c))
}

// del removes a registered (not fixed) consumer and reports whether there
// was one.
func (s *Server) del(port uint32) bool {
	for _, c := range *s.set.Load() {
		if c.name.Pid == port && !c.fixed {
			return s.remove(c)
		}
	}
	return false
}

func (s *Server) remove(c *consumer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.active.Load() {
		return false
	}
	c.active.Store(false)
	var set []*consumer
	for _, o := range *s.set.Load() {
		if o != c {
			set = append(set, o)
		}
	}
	s.publishLocked(set)
	return true
}

func (s *Server) publishLocked(set []*consumer) {
	s.set.Store(&set)
	close(s.changed)
	s.changed = make(chan struct{})
}
