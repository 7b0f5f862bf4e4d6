//go:build linux

package imp2

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/mmsg"
)

// server is Server on Linux.
type server struct {
	s       *sock
	family  int
	maxCons int
	open    bool // AllowUnprivileged
	onStats func(uint32, *Stats)
	owner   []userNS // user namespace owning the socket's netns, and its ancestors
	procNet *os.File // /proc/net/netlink of the socket's netns; nil if /proc is missing

	mu         sync.Mutex
	serial     uint64
	set        atomic.Pointer[[]*consumer] // active consumers; replaced, never modified
	registered int                         // consumers in set that are not fixed
	departed   []*consumer                 // the last KeptDeparted to leave, oldest first
	forgotten  DepartedStats               // those that left before them
	refused    RefusedStats
	changed    chan struct{} // closed and replaced when set changes

	events, unicastOK, eagain, econnrefused, enomem, otherErr atomic.Uint64

	sendMu  sync.Mutex // guards the send scratch below
	msgs    mmsg.Batch
	one     [1][]byte
	batch   [][]byte
	number  bool   // SendNumbered
	copies  []byte // the frames numbered for one consumer
	sent    int
	sendErr error
	sendFn  func(fd uintptr) // s.sendAll, bound once

	done chan struct{} // closed when the control goroutine ends
}

type consumer struct {
	name     unix.RawSockaddrNetlink
	serial   uint64 // order of appearance
	pid, uid uint32
	inode    uint64 // of its socket; 0 if unknown
	fixed    bool
	active   atomic.Bool

	sent, eagain, econnrefused, enobufs, eperm, other atomic.Uint64
	lastSeq                                           atomic.Uint32
}

// Listen opens the Server's socket and starts serving control messages.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Family == 0 {
		cfg.Family = UserSockFamily
	}
	if cfg.MaxConsumers == 0 {
		cfg.MaxConsumers = DefaultMaxConsumers
	}
	if cfg.MaxConsumers < 0 {
		return nil, fmt.Errorf("imp2: MaxConsumers %d is negative", cfg.MaxConsumers)
	}
	so, err := openSock(cfg.Family, cfg.NetNS, cfg.PortID, false)
	if err != nil {
		return nil, err
	}
	s := &Server{server{s: so, family: cfg.Family, maxCons: cfg.MaxConsumers, open: cfg.AllowUnprivileged, onStats: cfg.OnStats,
		changed: make(chan struct{}), done: make(chan struct{})}}
	if err := s.setup(cfg.NetNS); err != nil {
		so.Close()
		return nil, err
	}
	s.sendFn = s.sendAll
	s.set.Store(&[]*consumer{})
	if cfg.Dest != 0 {
		s.mu.Lock()
		s.addLocked(cfg.Dest, nil, 0, true)
		s.mu.Unlock()
	}
	go s.serve()
	return s, nil
}

// setup asks for the senders' credentials and finds what the admission
// check and the liveness check read: the socket's namespace's owner and
// its /proc/net/netlink. Without /proc neither can be read; only
// AllowUnprivileged then admits anyone.
func (s *Server) setup(netns int) error {
	if err := s.s.setInt(unix.SOL_SOCKET, unix.SO_PASSCRED, 1, "SO_PASSCRED"); err != nil {
		return err
	}
	return inNetNS(netns, func() error {
		if f, err := os.Open("/proc/thread-self/net/netlink"); err == nil {
			s.procNet = f
		}
		nsf, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			if s.open {
				return nil
			}
			return fmt.Errorf("imp2: the network namespace, needed to check the consumers' CAP_NET_ADMIN: %w", err)
		}
		defer nsf.Close()
		s.owner, err = ownerChain(int(nsf.Fd()))
		if err != nil && s.open {
			err = nil
		}
		return err
	})
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
// consumers. Every frame not queued is counted for its consumer by error
// class (SendCounts): a full queue drops it (EAGAIN); a registered
// consumer whose socket is gone (ECONNREFUSED) leaves the set. The first
// error other than EAGAIN and ECONNREFUSED is returned. It allocates
// nothing.
func (s *Server) SendBatch(frames [][]byte) (int, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.sendLocked(frames)
}

// SendNumbered is SendBatch with the module's numbering: each consumer
// gets copies of the frames whose nlmsg_seq continues its own count, one
// past the last frame offered to it (1 after its registration), and a
// frame it drops uses its number too, so that its losses show as gaps.
func (s *Server) SendNumbered(frames [][]byte) (int, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.number = true
	defer func() { s.number = false }()
	return s.sendLocked(frames)
}

func (s *Server) sendLocked(frames [][]byte) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	s.events.Add(uint64(len(frames)))
	s.msgs.Grow(len(frames))
	for i, f := range frames {
		s.msgs.Set(i, f)
	}
	s.batch, s.sent, s.sendErr = frames, 0, nil
	if err := s.s.RawControl(s.sendFn); err != nil {
		s.sendErr = err
	}
	s.msgs.Release(len(frames)) // do not keep caller buffers alive
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
		if s.number {
			s.numberFor(c)
		} else {
			c.lastSeq.Store(seq)
		}
		mmsg.SetAddr(&s.msgs, len(s.batch), &c.name)
		s.sendTo(fd, c)
	}
}

// numberFor points the batch's iovecs at copies of its frames numbered
// for c (SendNumbered).
func (s *Server) numberFor(c *consumer) {
	s.copies = s.copies[:0]
	for _, f := range s.batch {
		s.copies = append(s.copies, f...)
	}
	seq, b := c.lastSeq.Load(), s.copies
	for i, f := range s.batch {
		seq++
		if len(f) >= HeaderLen {
			ne.PutUint32(b[8:12], seq)
		}
		s.msgs.Set(i, b[:len(f)])
		b = b[len(f):]
	}
	c.lastSeq.Store(seq)
}

// sendTo sends the batch to c, skipping each frame c refuses.
func (s *Server) sendTo(fd uintptr, c *consumer) {
	for off := 0; off < len(s.batch); {
		n, e := s.msgs.Send(fd, off, len(s.batch), unix.MSG_DONTWAIT)
		off += n
		s.sent += n
		c.sent.Add(uint64(n))
		s.unicastOK.Add(uint64(n))
		switch e {
		case 0:
			return
		case unix.EAGAIN:
			c.eagain.Add(1)
			s.eagain.Add(1)
		case unix.ECONNREFUSED:
			s.econnrefused.Add(1)
			c.econnrefused.Add(1)
			if !c.fixed {
				// Like the module, stop sending to it: the rest of the
				// batch is not offered.
				s.mu.Lock()
				s.removeLocked(c)
				s.mu.Unlock()
				return
			}
		case unix.ENOBUFS: // the skb allocation failed: the module's enomem
			c.enobufs.Add(1)
			s.enomem.Add(1)
		default:
			if e == unix.EPERM {
				c.eperm.Add(1)
			} else {
				c.other.Add(1)
			}
			s.otherErr.Add(1)
			if s.sendErr == nil {
				s.sendErr = os.NewSyscallError("sendmmsg", e)
			}
		}
		off++ // this frame is lost for c, as with the module
	}
}

// WaitConsumers waits until at least n consumers are registered whose
// sockets still exist (the fixed Dest does not count).
func (s *Server) WaitConsumers(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		if s.registered >= n {
			s.pruneLocked() // count only consumers still there
		}
		have, changed := s.registered, s.changed
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

// Registered drops the registered consumers whose socket is gone and
// returns how many remain.
func (s *Server) Registered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	return s.registered
}

// Consumers returns the consumers in the set and the last KeptDeparted to
// have left it, in the order they appeared; Departed sums the others.
func (s *Server) Consumers() []ConsumerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := append(slices.Clone(*s.set.Load()), s.departed...)
	slices.SortFunc(all, func(a, b *consumer) int { return cmp.Compare(a.serial, b.serial) })
	out := make([]ConsumerStats, len(all))
	for i, c := range all {
		out[i] = c.stats()
	}
	return out
}

// Departed sums the consumers that left before the ones Consumers lists.
func (s *Server) Departed() DepartedStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forgotten
}

// Refused counts the registrations turned down.
func (s *Server) Refused() RefusedStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func (c *consumer) stats() ConsumerStats {
	return ConsumerStats{
		PortID: c.name.Pid, PID: c.pid, UID: c.uid, Active: c.active.Load(), Fixed: c.fixed,
		SendCounts: c.counts(), LastSeq: c.lastSeq.Load(),
	}
}

func (c *consumer) counts() SendCounts {
	return SendCounts{
		Sent: c.sent.Load(), EAGAIN: c.eagain.Load(), ECONNREFUSED: c.econnrefused.Load(),
		ENOBUFS: c.enobufs.Load(), EPERM: c.eperm.Load(), Other: c.other.Load(),
	}
}

// Stats returns the counters the Server reports to IMP2_GET_STATS, in the
// module's terms: Events counts frames offered, one per frame whatever the
// number of consumers; ENOMEM counts ENOBUFS (a failed allocation).
func (s *Server) Stats() Stats {
	return Stats{
		Events: s.events.Load(), UnicastOK: s.unicastOK.Load(), EAGAIN: s.eagain.Load(),
		ECONNREFUSED: s.econnrefused.Load(), ENOMEM: s.enomem.Load(), OtherErr: s.otherErr.Load(),
		Consumers: uint32(len(*s.set.Load())),
	}
}

// Close stops serving and closes the socket.
func (s *Server) Close() error {
	err := s.s.Close()
	<-s.done
	if s.procNet != nil {
		s.procNet.Close()
	}
	return err
}

// ctlReader receives control datagrams whole, with the sender's
// credentials.
type ctlReader struct {
	buf, oob []byte
	n, oobn  int
	port     uint32
	errno    syscall.Errno
}

// ctlBuf is the receive buffer kept between datagrams; a longer datagram
// gets a buffer of its own size for as long as it is handled.
const ctlBuf = 4096

// read runs in RawConn.Read: it peeks at the length of the next datagram
// (MSG_TRUNC gives the whole length), grows the buffer to it and receives
// it, so that no datagram is cut short.
func (r *ctlReader) read(fd uintptr) bool {
	for {
		n, _, err := unix.Recvfrom(int(fd), r.buf[:cap(r.buf)], unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.errno, _ = err.(syscall.Errno)
			return true
		}
		if n > cap(r.buf) {
			r.buf = make([]byte, n)
		}
		var from unix.Sockaddr
		r.n, r.oobn, _, from, err = unix.Recvmsg(int(fd), r.buf[:cap(r.buf)], r.oob, unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		r.errno, _ = err.(syscall.Errno)
		r.port = 0
		if sa, ok := from.(*unix.SockaddrNetlink); ok {
			r.port = sa.Pid
		}
		return true
	}
}

func (r *ctlReader) cred() *unix.Ucred {
	cms, err := unix.ParseSocketControlMessage(r.oob[:r.oobn])
	if err != nil {
		return nil
	}
	for i := range cms {
		if c, err := unix.ParseUnixCredentials(&cms[i]); err == nil {
			return c
		}
	}
	return nil
}

func (s *Server) serve() {
	defer close(s.done)
	r := &ctlReader{buf: make([]byte, ctlBuf), oob: make([]byte, unix.CmsgSpace(unix.SizeofUcred))}
	for {
		r.errno = 0
		if err := s.s.RawRead(r.read); err != nil {
			return // closed
		}
		if r.errno != 0 {
			continue // ENOBUFS, ENOMEM: the socket is still fine
		}
		if r.port != 0 {
			s.handle(r.port, r.cred(), r.buf[:r.n])
		}
		if cap(r.buf) > ctlBuf {
			r.buf = make([]byte, ctlBuf)
		}
	}
}

// handle walks the netlink messages of one datagram from port as the
// module's imp2_rcv walks an skb (nlmsg_ok, nlmsg_next): a message whose
// nlmsg_len is below the header or beyond the datagram ends the walk, and
// payload bytes after a control message's header are ignored.
func (s *Server) handle(port uint32, cred *unix.Ucred, b []byte) {
	for len(b) >= HeaderLen {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		var errno syscall.Errno
		switch h.Type {
		case TypeRegister:
			errno = s.register(port, cred)
		case TypeClose:
			if !s.del(port) {
				errno = unix.ENOENT
			}
		case TypeGetStats:
			s.replyStats(port, h)
		}
		if h.Flags&FlagAck != 0 && (h.Type == TypeRegister || h.Type == TypeClose) {
			s.ack(port, b[:h.Len], errno)
		}
		adv := (int(h.Len) + 3) &^ 3
		if adv >= len(b) {
			return
		}
		b = b[adv:]
	}
}

// ack answers as netlink_ack does for a socket without NETLINK_CAP_ACK:
// success echoes the request's header (NLM_F_CAPPED), an error the whole
// request.
func (s *Server) ack(port uint32, req []byte, errno syscall.Errno) {
	const capped = 0x100 // NLM_F_CAPPED
	h, _ := ParseHeader(req)
	flags, echo := uint16(capped), req[:HeaderLen]
	if errno != 0 {
		flags, echo = 0, req
	}
	n := HeaderLen + 4 + (len(echo)+3)&^3
	b := make([]byte, n)
	PutHeader(b, Header{Len: uint32(n), Type: unix.NLMSG_ERROR, Flags: flags, Seq: h.Seq, PID: port})
	ne.PutUint32(b[HeaderLen:], uint32(-int32(errno)))
	copy(b[HeaderLen+4:], echo)
	s.s.sendTo(b, port)
}

func (s *Server) replyStats(port uint32, req Header) {
	st := s.Stats()
	for _, c := range *s.set.Load() {
		if c.name.Pid == port {
			cs := c.counts()
			st.SelfRegistered, st.SelfSent, st.SelfDropped, st.SelfLastSeq = true, cs.Sent, cs.Failed(), c.lastSeq.Load()
		}
	}
	if s.onStats != nil {
		s.onStats(port, &st)
	}
	b := make([]byte, HeaderLen, HeaderLen+StatsLen)
	PutHeader(b, Header{Len: HeaderLen + StatsLen, Type: TypeStats, Seq: req.Seq, PID: port})
	s.s.sendTo(AppendStats(b, st), port)
}

// register is IMP2_U_PID from port, in the module's order: the capability
// check, then an existing registration is kept (with its counters), then
// MaxConsumers. A registration is its socket: a port now held by another
// socket than the one registered replaces it.
func (s *Server) register(port uint32, cred *unix.Ucred) syscall.Errno {
	var inode uint64
	if s.procNet != nil {
		if socks, err := netlinkSockets(s.procNet, s.family); err == nil {
			inode = socks[port]
		}
	}
	if !s.open {
		var err error = errNotPrivileged
		if cred != nil {
			err = checkPrivilege(s.owner, uint32(cred.Pid), inode)
		}
		if err != nil {
			s.mu.Lock()
			s.refused.EPERM++
			s.mu.Unlock()
			return unix.EPERM
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range *s.set.Load() {
		if c.name.Pid != port {
			continue
		}
		if c.fixed || c.inode == inode || c.inode == 0 || inode == 0 {
			return 0
		}
		s.removeLocked(c) // closed without IMP2_CLOSE; its port was bound again
		break
	}
	if s.registered >= s.maxCons {
		s.pruneLocked()
		if s.registered >= s.maxCons {
			s.refused.ENOSPC++
			return unix.ENOSPC
		}
	}
	s.addLocked(port, cred, inode, false)
	return 0
}

func (s *Server) addLocked(port uint32, cred *unix.Ucred, inode uint64, fixed bool) {
	s.serial++
	c := &consumer{name: unix.RawSockaddrNetlink{Family: unix.AF_NETLINK, Pid: port},
		serial: s.serial, inode: inode, fixed: fixed}
	if cred != nil {
		c.pid, c.uid = uint32(cred.Pid), cred.Uid
	}
	c.active.Store(true)
	if !fixed {
		s.registered++
	}
	s.publishLocked(append(slices.Clone(*s.set.Load()), c))
}

// del removes a registered (not fixed) consumer and reports whether there
// was one.
func (s *Server) del(port uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range *s.set.Load() {
		if c.name.Pid == port && !c.fixed {
			return s.removeLocked(c)
		}
	}
	return false
}

// pruneLocked removes the registered consumers whose socket no longer
// holds their port (closed without IMP2_CLOSE). Without /proc it does
// nothing.
func (s *Server) pruneLocked() {
	if s.procNet == nil || s.registered == 0 {
		return
	}
	socks, err := netlinkSockets(s.procNet, s.family)
	if err != nil {
		return
	}
	for _, c := range *s.set.Load() {
		if ino, ok := socks[c.name.Pid]; !c.fixed && (!ok || (c.inode != 0 && ino != c.inode)) {
			s.removeLocked(c)
		}
	}
}

func (s *Server) removeLocked(c *consumer) bool {
	if !c.active.Load() {
		return false
	}
	c.active.Store(false)
	if !c.fixed {
		s.registered--
	}
	var set []*consumer
	for _, o := range *s.set.Load() {
		if o != c {
			set = append(set, o)
		}
	}
	if len(s.departed) == KeptDeparted {
		s.forgotten.Consumers++
		s.forgotten.Add(s.departed[0].counts())
		s.departed = append(s.departed[:0], s.departed[1:]...)
	}
	s.departed = append(s.departed, c)
	s.publishLocked(set)
	return true
}

func (s *Server) publishLocked(set []*consumer) {
	s.set.Store(&set)
	close(s.changed)
	s.changed = make(chan struct{})
}
