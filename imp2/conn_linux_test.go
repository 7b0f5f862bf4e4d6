//go:build linux

package imp2

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func listen(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		cfg.AllowUnprivileged = true // the test's consumers lack CAP_NET_ADMIN too
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t testing.TB, cfg Config) *Conn {
	t.Helper()
	if cfg.Family == 0 {
		cfg.Family = UserSockFamily
	}
	c, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bothModes runs f with a polled and with a blocking Conn, and with a
// blocking one connected to its peer (imp2-record's).
func bothModes(t *testing.T, f func(t *testing.T, cfg Config)) {
	t.Run("polled", func(t *testing.T) { f(t, Config{}) })
	t.Run("blocking", func(t *testing.T) { f(t, Config{Blocking: true}) })
	t.Run("connected", func(t *testing.T) { f(t, Config{Blocking: true, Connect: true}) })
}

// TestConnectRefusesOthers: a consumer connected to its peer is out of
// reach of any other sender, and still gets the peer's events.
func TestConnectRefusesOthers(t *testing.T) {
	s, cs := pair(t, 1, Config{Blocking: true, Connect: true})
	stranger, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, UserSockFamily)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(stranger)
	if err := unix.Bind(stranger, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	err = unix.Sendto(stranger, eventFrame(99), unix.MSG_DONTWAIT, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: cs[0].PortID()})
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("a stranger's datagram to a connected consumer: %v, want ECONNREFUSED", err)
	}
	if _, err := s.SendBatch(frames(1, 1)); err != nil {
		t.Fatal(err)
	}
	msgs := newMsgs(4, 256)
	n, err := cs[0].ReadBatch(msgs)
	if err != nil || n != 1 || msgs[0].PortID != s.PortID() {
		t.Fatalf("ReadBatch: %d, %v, from port %d; want the server's one event from %d", n, err, msgs[0].PortID, s.PortID())
	}
	if h, err := ParseHeader(msgs[0].Data()); err != nil || h.Seq != 1 {
		t.Errorf("received %+v (%v), want the server's event 1", h, err)
	}
}

// pair is a Server with n registered consumers.
func pair(t testing.TB, n int, cfg Config) (*Server, []*Conn) {
	t.Helper()
	s := listen(t, ServerConfig{})
	cfg.Peer = s.PortID()
	var cs []*Conn
	for range n {
		cs = append(cs, dial(t, cfg))
	}
	waitConsumers(t, s, n)
	return s, cs
}

func waitConsumers(t testing.TB, s *Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitConsumers(ctx, n); err != nil {
		t.Fatalf("waiting for %d consumers: %v", n, err)
	}
}

func eventFrame(seq uint32) []byte {
	return AppendEventMessage(nil, seq, Event{
		Src: netip.AddrFrom4([4]byte{10, 0, byte(seq >> 8), byte(seq)}), Dest: netip.MustParseAddr("10.9.9.9"),
		Extended: true, TimeNs: uint64(seq) * 1000, ICMPSeq: uint16(seq), Flags: EventFlagICMP,
	})
}

func frames(first, n int) [][]byte {
	var fs [][]byte
	for i := range n {
		fs = append(fs, eventFrame(uint32(first+i)))
	}
	return fs
}

func newMsgs(n, size int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i].Buf = make([]byte, size)
	}
	return msgs
}

// drain reads until the queue stays empty for a moment and returns the
// datagrams' nlmsg_seq in arrival order.
func drain(t testing.TB, c *Conn) []uint32 {
	t.Helper()
	var seqs []uint32
	msgs := newMsgs(64, 256)
	for {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.ReadBatch(msgs)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.SetReadDeadline(time.Time{})
			return seqs
		}
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		for _, m := range msgs[:n] {
			h, err := ParseHeader(m.Data())
			if err != nil || m.Truncated {
				t.Fatalf("bad datagram % x (truncated %v): %v", m.Data(), m.Truncated, err)
			}
			seqs = append(seqs, h.Seq)
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func consumerStats(s *Server, port uint32) (ConsumerStats, bool) {
	for _, c := range s.Consumers() {
		if c.PortID == port {
			return c, true
		}
	}
	return ConsumerStats{}, false
}

func TestDialModuleAbsent(t *testing.T) {
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, DefaultFamily); err == nil {
		unix.Close(fd)
		t.Skip("netlink unit 31 exists here: the module is loaded")
	}
	_, err := Dial(Config{})
	if err == nil || !strings.Contains(err.Error(), "the imp2 module is not loaded for family 31") {
		t.Fatalf("Dial: %v", err)
	}
	if !errors.Is(err, unix.EPROTONOSUPPORT) {
		t.Errorf("Dial error %v does not wrap EPROTONOSUPPORT", err)
	}
}

func TestRoundTrip(t *testing.T) { bothModes(t, testRoundTrip) }

func testRoundTrip(t *testing.T, cfg Config) {
	s, cs := pair(t, 1, cfg)
	c := cs[0]
	if st, ok := consumerStats(s, c.PortID()); !ok || !st.Active || st.Fixed {
		t.Fatalf("consumer %d after registering: %+v", c.PortID(), st)
	}
	const n = 100
	if got, err := s.SendBatch(frames(1, n)); got != n || err != nil {
		t.Fatalf("SendBatch: %d, %v", got, err)
	}
	msgs := newMsgs(32, 256)
	for want := uint32(1); want <= n; {
		k, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs[:k] {
			if m.PortID != s.PortID() {
				t.Errorf("sender port %d, want the server's %d", m.PortID, s.PortID())
			}
			h, err := ParseHeader(m.Data())
			if err != nil || h.Type != TypeEvent || h.Seq != want {
				t.Fatalf("message %+v (%v), want event seq %d", h, err, want)
			}
			e, err := ParseEvent(m.Data()[HeaderLen:h.Len])
			if err != nil || e.ICMPSeq != uint16(want) || e.Src != netip.AddrFrom4([4]byte{10, 0, 0, byte(want)}) {
				t.Fatalf("event %+v (%v), want seq %d", e, err, want)
			}
			want++
		}
	}
	if st, _ := consumerStats(s, c.PortID()); st.Sent != n || st.EAGAIN != 0 || st.LastSeq != n {
		t.Errorf("server's view of the consumer: %+v", st)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitFor(t, "IMP2_CLOSE to remove the consumer", func() bool { return s.Stats().Consumers == 0 })
	if st, _ := consumerStats(s, c.PortID()); st.Active {
		t.Errorf("closed consumer still active: %+v", st)
	}
}

func TestReceive(t *testing.T) { bothModes(t, testReceive) }

func testReceive(t *testing.T, cfg Config) {
	s, cs := pair(t, 1, cfg)
	s.Send(eventFrame(5))
	b, err := cs[0].Receive()
	if err != nil {
		t.Fatal(err)
	}
	if h, err := ParseHeader(b); err != nil || h.Seq != 5 || len(b) != HeaderLen+EventLen {
		t.Fatalf("Receive: %d bytes, %+v, %v", len(b), h, err)
	}
}

func TestTwoConsumersGetEveryFrame(t *testing.T) {
	s, cs := pair(t, 2, Config{})
	const n = 200
	for i := 1; i <= n; i++ {
		if got, err := s.Send(eventFrame(uint32(i))); got != 2 || err != nil {
			t.Fatalf("Send %d: queued %d, %v", i, got, err)
		}
	}
	for _, c := range cs {
		seqs := drain(t, c)
		if len(seqs) != n {
			t.Fatalf("consumer %d got %d frames, want %d", c.PortID(), len(seqs), n)
		}
		for i, q := range seqs {
			if q != uint32(i+1) {
				t.Fatalf("consumer %d: frame %d has seq %d", c.PortID(), i, q)
			}
		}
	}
	if st := s.Stats(); st.Events != n || st.UnicastOK != 2*n || st.Consumers != 2 {
		t.Errorf("server stats %+v", st)
	}
}

// A user-space sender to a full queue gets EAGAIN itself: the Server counts
// it, the consumer sees a sequence gap but neither ENOBUFS nor sk_drops.
func TestStalledConsumerEAGAIN(t *testing.T) {
	s, cs := pair(t, 2, Config{})
	stalled, reader := cs[0], cs[1]
	const n = 2000 // far more than the default 208 KiB queue holds
	done := make(chan []uint32)
	go func() { done <- drainFor(reader, n) }()
	for i := 1; i <= n; i++ {
		s.Send(eventFrame(uint32(i)))
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the reading consumer keep up
		}
	}
	if got := <-done; len(got) != n {
		t.Errorf("the reading consumer got %d of %d", len(got), n)
	}
	seqs := drain(t, stalled)
	missed := n - len(seqs)
	st, _ := consumerStats(s, stalled.PortID())
	t.Logf("stalled consumer: received %d, missed %d; server: %+v", len(seqs), missed, st)
	if missed == 0 || st.EAGAIN != uint64(missed) || st.Sent != uint64(len(seqs)) {
		t.Errorf("server counted %d EAGAIN and %d sent; the consumer missed %d and got %d", st.EAGAIN, st.Sent, missed, len(seqs))
	}
	for i, q := range seqs { // what fitted came first, in order
		if q != uint32(i+1) {
			t.Fatalf("frame %d has seq %d", i, q)
		}
	}
	if mi, err := stalled.MemInfo(); err != nil || mi.Drops != 0 {
		t.Errorf("SO_MEMINFO drops %d (%v): a user-space sender should not raise sk_drops", mi.Drops, err)
	}
	if got := s.Stats().EAGAIN; got != uint64(missed) {
		t.Errorf("server EAGAIN total %d, want %d", got, missed)
	}
}

func drainFor(c *Conn, n int) []uint32 {
	var seqs []uint32
	msgs := newMsgs(64, 256)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(seqs) < n {
		k, err := c.ReadBatch(msgs)
		if err != nil {
			return seqs
		}
		for _, m := range msgs[:k] {
			h, _ := ParseHeader(m.Data())
			seqs = append(seqs, h.Seq)
		}
	}
	return seqs
}

// The Server, like the module, takes the consumer's identity from the
// sender address: a Close naming the victim's pid closes nothing, and a
// register naming it registers the sender.
func TestCloseNamingAnotherPID(t *testing.T) {
	s, cs := pair(t, 1, Config{})
	victim := cs[0]
	attacker, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	msg := AppendControl(nil, TypeClose, FlagRequest|FlagAck, 9, victim.PortID())
	if err := attacker.sendTo(msg, s.PortID()); err != nil {
		t.Fatal(err)
	}
	ack := readAck(t, attacker)
	if e := int32(ne.Uint32(ack[HeaderLen:])); e != -int32(unix.ENOENT) {
		t.Errorf("ack error %d, want -ENOENT: the attacker was never registered", e)
	}
	if st, _ := consumerStats(s, victim.PortID()); !st.Active {
		t.Fatalf("victim removed by a Close naming its pid: %+v", st)
	}
	if err := attacker.sendTo(AppendControl(nil, TypeRegister, FlagRequest|FlagAck, 10, victim.PortID()), s.PortID()); err != nil {
		t.Fatal(err)
	}
	readAck(t, attacker)
	if _, ok := consumerStats(s, attacker.port); !ok {
		t.Errorf("register naming the victim's pid did not register the sender %d", attacker.port)
	}
	s.Send(eventFrame(1))
	if seqs := drain(t, victim); len(seqs) != 1 {
		t.Errorf("victim got %d frames after the attack, want 1", len(seqs))
	}
}

func readAck(t *testing.T, so *sock) []byte {
	t.Helper()
	so.SetReadDeadline(time.Now().Add(2 * time.Second))
	msgs := newMsgs(1, 256)
	if _, err := newReceiver(so, false, 0).read(msgs); err != nil {
		t.Fatalf("no ack: %v", err)
	}
	b := msgs[0].Data()
	if h, err := ParseHeader(b); err != nil || h.Type != unix.NLMSG_ERROR || len(b) < HeaderLen+4 {
		t.Fatalf("not an ack: % x", b)
	}
	return b
}

func TestAck(t *testing.T) {
	s := listen(t, ServerConfig{})
	dial(t, Config{Peer: s.PortID(), Ack: true})
	if s.Stats().Consumers != 1 {
		t.Errorf("after an acknowledged register the server has %d consumers", s.Stats().Consumers)
	}
	// A peer that never answers: Dial gives up after AckTimeout.
	silent, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_, err = Dial(Config{Family: UserSockFamily, Peer: silent.port, Ack: true, AckTimeout: 100 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("Dial to a silent peer: %v after %v", err, time.Since(start))
	}
	// No peer at all.
	if _, err := Dial(Config{Family: UserSockFamily, Peer: silent.port + 1000}); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("Dial to a missing peer: %v, want ECONNREFUSED", err)
	}
}

func TestStats(t *testing.T) { bothModes(t, testStatsRequest) }

func testStatsRequest(t *testing.T, cfg Config) {
	s, cs := pair(t, 2, cfg)
	c := cs[0]
	s.SendBatch(frames(1, 5))
	// No reader running: Stats reads the queue itself and keeps the events;
	// only ctx bounds it, not an expired read deadline, which it restores.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.r.read(newMsgs(1, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read deadline not restored after Stats: %v", err)
	}
	want := Stats{Events: 5, UnicastOK: 10, Consumers: 2, SelfRegistered: true, SelfSent: 5, SelfLastSeq: 5}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	if seqs := drain(t, c); len(seqs) != 5 || seqs[0] != 1 || seqs[4] != 5 {
		t.Errorf("events read by Stats were not all kept for ReadBatch: %v", seqs)
	}

	// A reader running: it passes the reply on and sees it in its batch.
	got := make(chan []uint16, 1)
	sawEvents := make(chan struct{})
	go func() {
		var types []uint16
		msgs := newMsgs(8, 256)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for len(types) < 4 {
			n, err := c.ReadBatch(msgs)
			if err != nil {
				break
			}
			for _, m := range msgs[:n] {
				h, _ := ParseHeader(m.Data())
				types = append(types, h.Type)
			}
			if len(types) == 3 {
				close(sawEvents)
			}
		}
		got <- types
	}()
	s.SendBatch(frames(6, 3))
	<-sawEvents
	// Between two ReadBatch calls Stats would read the reply itself: let
	// the reader block again first.
	time.Sleep(20 * time.Millisecond)
	st, err = c.Stats(ctx)
	if err != nil || st.SelfSent != 8 || st.Events != 8 {
		t.Errorf("Stats with a reader running: %+v, %v", st, err)
	}
	if types := <-got; len(types) != 4 || types[3] != TypeStats {
		t.Errorf("reader saw types %v, want three events then the stats reply", types)
	}

	// A peer that does not answer: Stats ends with ctx.
	silent, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	other := dial(t, Config{Peer: silent.port})
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := other.Stats(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stats from a silent peer: %v", err)
	}
	// The deadline Stats used is gone again.
	other.SetReadDeadline(time.Time{})
	s.Send(eventFrame(1))
}

func TestMemInfoRisesWhenNotDraining(t *testing.T) {
	s, cs := pair(t, 1, Config{})
	c := cs[0]
	before, err := c.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	rcvbuf, _ := c.RcvBuf()
	if before.RmemAlloc != 0 || int(before.RcvBuf) != rcvbuf {
		t.Errorf("idle socket: %+v, SO_RCVBUF %d", before, rcvbuf)
	}
	var last uint32
	for i := 1; i <= 3; i++ {
		s.SendBatch(frames(i*10, 10))
		mi, err := c.MemInfo()
		if err != nil {
			t.Fatal(err)
		}
		if mi.RmemAlloc <= last {
			t.Errorf("after %d frames rmem_alloc %d, was %d", 10*i, mi.RmemAlloc, last)
		}
		last = mi.RmemAlloc
	}
	t.Logf("30 queued 48-byte events use %d bytes (%d each)", last, last/30)
	drain(t, c)
	if mi, _ := c.MemInfo(); mi.RmemAlloc != 0 {
		t.Errorf("drained socket still holds %d bytes", mi.RmemAlloc)
	}
}

func TestRcvBufForce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE needs CAP_NET_ADMIN")
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	want := 2 * rmemMax // beyond the cap plain SO_RCVBUF obeys
	c := dial(t, Config{Peer: listen(t, ServerConfig{}).PortID(), RcvBuf: want, NoENOBUFS: true})
	if got, err := c.RcvBuf(); err != nil || got != 2*want {
		t.Errorf("RcvBuf() = %d, %v; want %d (the kernel doubles the request)", got, err, 2*want)
	}
	if v, err := c.s.getInt(unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, "NETLINK_NO_ENOBUFS"); err != nil || v != 1 {
		t.Errorf("NETLINK_NO_ENOBUFS = %d, %v", v, err)
	}
}

// TestRcvBufMax: MaxRcvBuf is granted whole (doubled), and a request past
// it, which the kernel would clamp or wrap to its smallest buffer, is
// refused before a socket is opened.
func TestRcvBufMax(t *testing.T) {
	if _, err := Dial(Config{Family: UserSockFamily, RcvBuf: MaxRcvBuf + 1}); err == nil || !strings.Contains(err.Error(), "at most 1073741823 (MaxRcvBuf)") {
		t.Errorf("Dial with RcvBuf MaxRcvBuf+1: %v; want it refused naming MaxRcvBuf", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE needs CAP_NET_ADMIN")
	}
	c := dial(t, Config{Peer: listen(t, ServerConfig{}).PortID(), RcvBuf: MaxRcvBuf})
	if got, err := c.RcvBuf(); err != nil || got != 2*MaxRcvBuf {
		t.Errorf("RcvBuf() = %d, %v; want %d, MaxRcvBuf doubled", got, err, 2*MaxRcvBuf)
	}
}

func TestCloseUnblocksReadBatch(t *testing.T) { bothModes(t, testCloseUnblocksReadBatch) }

func testCloseUnblocksReadBatch(t *testing.T, cfg Config) {
	_, cs := pair(t, 1, cfg)
	c := cs[0]
	errc := make(chan error)
	go func() {
		_, err := c.ReadBatch(newMsgs(4, 256))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadBatch")
	}
	if _, err := c.ReadBatch(newMsgs(1, 64)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch on a closed Conn: %v", err)
	}
}

func TestReadDeadline(t *testing.T) { bothModes(t, testReadDeadline) }

func testReadDeadline(t *testing.T, cfg Config) {
	_, cs := pair(t, 1, cfg)
	cs[0].SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := cs[0].ReadBatch(newMsgs(1, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadBatch past the deadline: %v", err)
	}
	if !cfg.Blocking {
		return
	}
	// A blocking read sleeps until the deadline, not a whole blockingPoll
	// (the kernel keeps SO_RCVTIMEO in jiffies: up to 10 ms more).
	var tv *unix.Timeval
	cs[0].s.Control(func(fd int) (err error) {
		tv, err = unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
		return err
	})
	if tv == nil || time.Duration(tv.Nano()) > 40*time.Millisecond || tv.Nano() <= 0 {
		t.Errorf("SO_RCVTIMEO %v during a read with a deadline 30 ms away", tv)
	}
}

func TestTruncated(t *testing.T) {
	s, cs := pair(t, 1, Config{})
	s.Send(eventFrame(1))
	msgs := newMsgs(1, 20)
	if n, err := cs[0].ReadBatch(msgs); n != 1 || err != nil || !msgs[0].Truncated || msgs[0].N != 20 {
		t.Errorf("short buffer: %d, %v, %+v", n, err, msgs[0])
	}
}

func TestConsumerGoneIsRemoved(t *testing.T) {
	s, cs := pair(t, 1, Config{})
	c := cs[0]
	c.s.Close() // killed: no IMP2_CLOSE
	if n, err := s.Send(eventFrame(1)); n != 0 || err != nil {
		t.Errorf("Send to a gone consumer: %d, %v", n, err)
	}
	if st, _ := consumerStats(s, c.PortID()); st.Active {
		t.Errorf("gone consumer still active: %+v", st)
	}
	if st := s.Stats(); st.ECONNREFUSED != 1 || st.Consumers != 0 {
		t.Errorf("server stats %+v", st)
	}
}

func TestFixedDest(t *testing.T) {
	dst, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	s := listen(t, ServerConfig{Dest: dst.port})
	if n, err := s.SendBatch(frames(1, 3)); n != 3 || err != nil {
		t.Fatalf("SendBatch to a fixed dest: %d, %v", n, err)
	}
	dst.SetReadDeadline(time.Now().Add(time.Second))
	msgs := newMsgs(8, 256)
	if n, err := newReceiver(dst, false, 0).read(msgs); n != 3 || err != nil {
		t.Errorf("fixed dest got %d frames, %v", n, err)
	}
	dst.Close()
	s.SendBatch(frames(4, 2))
	st := s.Consumers()
	if len(st) != 1 || !st[0].Active || !st[0].Fixed || st[0].Sent != 3 || s.Stats().ECONNREFUSED != 2 {
		t.Errorf("fixed dest after its socket went away: %+v, %+v", st, s.Stats())
	}
}

// newNetNS returns a file descriptor of a new network namespace.
func newNetNS(t *testing.T) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root")
	}
	fdc := make(chan int)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			fdc <- -1
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Errorf("open netns: %v", err)
		}
		fdc <- fd
	}()
	fd := <-fdc
	if fd < 0 {
		t.FailNow()
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestNetNS(t *testing.T) {
	ns := newNetNS(t)
	s := listen(t, ServerConfig{NetNS: ns})
	c := dial(t, Config{NetNS: ns, Peer: s.PortID()})
	waitConsumers(t, s, 1)
	s.Send(eventFrame(1))
	if seqs := drain(t, c); len(seqs) != 1 {
		t.Errorf("consumer in the namespace got %v", seqs)
	}
	// The host namespace has no such server unless a port collides.
	if _, err := Dial(Config{Family: UserSockFamily, Peer: s.PortID()}); !errors.Is(err, unix.ECONNREFUSED) {
		t.Logf("dial across namespaces: %v (a host socket may hold the same port)", err)
	}
}

func TestReadBatchAllocs(t *testing.T) { bothModes(t, testReadBatchAllocs) }

func testReadBatchAllocs(t *testing.T, cfg Config) {
	s, cs := pair(t, 1, cfg)
	batch := frames(1, 32)
	msgs := newMsgs(32, 256)
	got := 0
	allocs := testing.AllocsPerRun(100, func() {
		s.SendBatch(batch)
		for n := 0; n < len(batch); {
			k, err := cs[0].ReadBatch(msgs)
			if err != nil {
				t.Fatal(err)
			}
			n += k
			got += k
		}
	})
	if allocs != 0 {
		t.Errorf("SendBatch + ReadBatch: %v allocations per batch, want 0", allocs)
	}
	if got != 101*len(batch) {
		t.Errorf("received %d, want %d", got, 101*len(batch))
	}
}

func TestErrOverrun(t *testing.T) {
	if !errors.Is(ErrOverrun, unix.ENOBUFS) {
		t.Error("ErrOverrun does not wrap ENOBUFS")
	}
}

// TestBlockingStaysOutOfPoller checks where each mode's socket is: a
// polled Conn's fd is on the runtime's epoll list (/proc/self/fdinfo of
// the eventpoll fd names it as tfd), a blocking Conn's is not.
func TestBlockingStaysOutOfPoller(t *testing.T) {
	s := listen(t, ServerConfig{})
	for _, blocking := range []bool{false, true} {
		c := dial(t, Config{Peer: s.PortID(), Blocking: blocking})
		var fd int
		c.s.Control(func(f int) error { fd = f; return nil })
		if polled := inRuntimePoller(t, fd); polled == blocking {
			t.Errorf("Blocking %v: fd %d on the poller's epoll list: %v", blocking, fd, polled)
		}
	}
}

func inRuntimePoller(t *testing.T, fd int) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(info), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" && f[1] == strconv.Itoa(fd) {
				return true
			}
		}
	}
	return false
}

// TestOnControl: the hook sees every control frame Conn sends, numbered
// as the peer received them, and every reply it consumes, byte for byte,
// in order; events Stats read on its way to the reply still come from
// ReadBatch and not from the hook, and a Close the peer never got (it is
// gone) is not shown as sent.
func TestOnControl(t *testing.T) {
	type ctl struct {
		dir ControlDir
		b   []byte
	}
	var got []ctl
	s := listen(t, ServerConfig{})
	c := dial(t, Config{Peer: s.PortID(), Ack: true, OnControl: func(dir ControlDir, b []byte) {
		got = append(got, ctl{dir, append([]byte(nil), b...)})
	}})
	waitConsumers(t, s, 1)
	ev := eventFrame(1)
	if _, err := s.Send(ev); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Receive()
	if err != nil || string(b) != string(ev) {
		t.Fatalf("Receive after Stats: %x, %v; want the event %x", b, err, ev)
	}
	s.Close()
	c.Close()

	port := c.PortID()
	reg := AppendControl(nil, TypeRegister, FlagRequest|FlagAck, 1, port)
	ack := make([]byte, HeaderLen+4, 2*HeaderLen+4)
	PutHeader(ack, Header{Len: 2*HeaderLen + 4, Type: unix.NLMSG_ERROR, Flags: 0x100, Seq: 1, PID: port})
	ack = append(ack, reg[:HeaderLen]...)
	stats := make([]byte, HeaderLen, HeaderLen+StatsLen)
	PutHeader(stats, Header{Len: HeaderLen + StatsLen, Type: TypeStats, Seq: 2, PID: port})
	stats = AppendStats(stats, st)
	want := []ctl{
		{ControlSent, reg},
		{ControlReceived, ack},
		{ControlSent, AppendControl(nil, TypeGetStats, FlagRequest, 2, port)},
		{ControlReceived, stats},
	}
	if len(got) != len(want) {
		t.Fatalf("OnControl saw %d frames, want %d: %x", len(got), len(want), got)
	}
	for i := range want {
		if got[i].dir != want[i].dir || string(got[i].b) != string(want[i].b) {
			t.Errorf("frame %d: %d %x; want %d %x", i, got[i].dir, got[i].b, want[i].dir, want[i].b)
		}
	}
	if !st.SelfRegistered || st.SelfSent != 1 {
		t.Errorf("stats %+v; want this consumer registered, sent 1", st)
	}
}

// TestOnControlClose: IMP2_CLOSE is shown once the peer has it.
func TestOnControlClose(t *testing.T) {
	var got [][]byte
	s := listen(t, ServerConfig{})
	c := dial(t, Config{Peer: s.PortID(), OnControl: func(dir ControlDir, b []byte) {
		if dir == ControlSent {
			got = append(got, append([]byte(nil), b...))
		}
	}})
	waitConsumers(t, s, 1)
	c.Close()
	want := [][]byte{
		AppendControl(nil, TypeRegister, 0, 1, c.PortID()),
		AppendControl(nil, TypeClose, 0, 2, c.PortID()),
	}
	if len(got) != 2 || string(got[0]) != string(want[0]) || string(got[1]) != string(want[1]) {
		t.Errorf("sent %x; want %x", got, want)
	}
}
