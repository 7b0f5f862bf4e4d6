//go:build linux

package imp2

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/childproc"
)

// registerEnv makes the test binary a consumer that registers with the
// Server at the given port and counts the events it receives (see
// runRegisterChild), run as another user by TestAdmission.
const registerEnv = "IMP2_TEST_REGISTER_WITH"

func init() {
	childproc.Dispatch(registerEnv, func(arg string) {
		port, err := strconv.ParseUint(arg, 10, 32)
		if err != nil {
			os.Exit(2)
		}
		runRegisterChild(uint32(port))
	})
}

// runRegisterChild registers a raw socket (IMP2_U_PID with NLM_F_ACK),
// prints the acknowledged error, then counts the IMP2_K_MSG frames that
// reach it in 1 s, whatever the answer: a refused consumer must get none.
func runRegisterChild(port uint32) {
	so, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	defer so.Close()
	if err := so.sendTo(AppendControl(nil, TypeRegister, FlagRequest|FlagAck, 1, so.port), port); err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	r := newReceiver(so, false, 0)
	msgs := newMsgs(64, 256)
	ack, events := int32(1), 0
	for end := time.Now().Add(time.Second); ; {
		so.SetReadDeadline(end)
		n, err := r.read(msgs)
		if err != nil {
			break
		}
		for _, m := range msgs[:n] {
			h, err := ParseHeader(m.Data())
			switch {
			case err != nil:
			case h.Type == unix.NLMSG_ERROR && len(m.Data()) >= HeaderLen+4:
				ack = int32(ne.Uint32(m.Data()[HeaderLen:]))
			case h.Type == TypeEvent:
				events++
			}
		}
	}
	fmt.Printf("ack %d events %d\n", ack, events)
}

// runChild runs the registering child with attr while the Server sends an
// event every 2 ms, and returns the acknowledged error and the events the
// child received.
func runChild(t *testing.T, s *Server, attr *syscall.SysProcAttr) (int32, int) {
	t.Helper()
	cmd := childproc.Command(t, registerEnv, strconv.FormatUint(uint64(s.PortID()), 10))
	cmd.SysProcAttr = attr
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint32(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				s.Send(eventFrame(seq))
			}
		}
	}()
	out, err := cmd.CombinedOutput()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var ack int32
	var events int
	if _, err := fmt.Sscanf(string(out), "ack %d events %d", &ack, &events); err != nil {
		t.Fatalf("child said %q", out)
	}
	return ack, events
}

// Like the module, the Server admits only CAP_NET_ADMIN: a process running
// as nobody, and root of a user namespace of its own (full capabilities
// there, none over the Server's network namespace), are refused with EPERM
// and get no event; AllowUnprivileged admits nobody.
func TestAdmission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a consumer as another user needs root")
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	userns := &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
	}
	for _, tc := range []struct {
		name string
		attr *syscall.SysProcAttr
	}{{"nobody", nobody}, {"userns-root", userns}} {
		t.Run(tc.name, func(t *testing.T) {
			s := listen(t, ServerConfig{})
			ack, events := runChild(t, s, tc.attr)
			if ack != -int32(unix.EPERM) || events != 0 {
				t.Errorf("registration acknowledged with %d and %d events, want %d (EPERM) and 0", ack, events, -int32(unix.EPERM))
			}
			if r := s.Refused(); r.EPERM != 1 || len(s.Consumers()) != 0 {
				t.Errorf("refused %+v, consumers %+v; want one EPERM and no consumer", r, s.Consumers())
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		s := listen(t, ServerConfig{AllowUnprivileged: true})
		ack, events := runChild(t, s, nobody)
		cs := s.Consumers()
		if ack != 0 || events == 0 || len(cs) != 1 || cs[0].UID != 65534 || cs[0].PID == 0 {
			t.Errorf("AllowUnprivileged: ack %d, %d events, consumers %+v; want 0, some, one of uid 65534", ack, events, cs)
		}
	})
	// Root (this process) is admitted.
	s := listen(t, ServerConfig{})
	dial(t, Config{Peer: s.PortID(), Ack: true})
	if cs := s.Consumers(); len(cs) != 1 || cs[0].PID != uint32(os.Getpid()) || cs[0].UID != 0 {
		t.Errorf("root consumer: %+v", cs)
	}
}

// MaxConsumers registered at once; one more gets ENOSPC until one leaves,
// by IMP2_CLOSE or by closing its socket.
func TestMaxConsumers(t *testing.T) {
	s := listen(t, ServerConfig{MaxConsumers: 2})
	a := dial(t, Config{Peer: s.PortID(), Ack: true})
	b := dial(t, Config{Peer: s.PortID(), Ack: true})
	if _, err := Dial(Config{Family: UserSockFamily, Peer: s.PortID(), Ack: true}); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("third registration: %v, want ENOSPC", err)
	}
	a.Close() // IMP2_CLOSE
	dial(t, Config{Peer: s.PortID(), Ack: true})
	b.s.Close() // gone without IMP2_CLOSE: found missing when the set is full
	dial(t, Config{Peer: s.PortID(), Ack: true})
	if _, err := Dial(Config{Family: UserSockFamily, Peer: s.PortID(), Ack: true}); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("registration over the limit: %v, want ENOSPC", err)
	}
	if r, n := s.Refused(), s.Registered(); r.ENOSPC != 2 || n != 2 {
		t.Errorf("refused %+v, registered %d; want 2 ENOSPC, 2 registered", r, n)
	}
}

// Registration churn leaves a bounded Server: the last KeptDeparted
// consumers are listed, the others summed, and memory does not grow with
// the number of consumers that came and went.
func TestChurnBounded(t *testing.T) {
	s := listen(t, ServerConfig{})
	keep := dial(t, Config{Peer: s.PortID(), Ack: true})
	s.Send(eventFrame(1))
	churn := func(n int) {
		for range n {
			c, err := Dial(Config{Family: UserSockFamily, Peer: s.PortID(), Ack: true})
			if err != nil {
				t.Fatal(err)
			}
			if n%2 == 0 {
				c.Close()
			} else {
				c.s.Close() // without IMP2_CLOSE
			}
		}
		s.Registered()
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	churn(1000)
	before := heap()
	const n = 10000
	churn(n)
	after := heap()
	cs, d := s.Consumers(), s.Departed()
	t.Logf("%d consumers listed, departed %+v, heap %d → %d bytes", len(cs), d, before, after)
	if len(cs) != KeptDeparted+1 || cs[0].PortID != keep.PortID() || cs[0].Sent != 1 {
		t.Errorf("listed %d consumers (first %+v), want the one still registered and %d departed", len(cs), cs[0], KeptDeparted)
	}
	if d.Consumers != 1000+n-KeptDeparted {
		t.Errorf("departed consumers summed: %d, want %d", d.Consumers, 1000+n-KeptDeparted)
	}
	if after > before+256<<10 {
		t.Errorf("heap grew by %d bytes over %d registrations", after-before, n)
	}
}

// A consumer gone without IMP2_CLOSE no longer counts for WaitConsumers.
func TestWaitConsumersCountsLive(t *testing.T) {
	s := listen(t, ServerConfig{})
	c := dial(t, Config{Peer: s.PortID(), Ack: true})
	c.s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.WaitConsumers(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitConsumers with the only consumer's socket closed: %v, want a timeout", err)
	}
	if n := s.Registered(); n != 0 {
		t.Errorf("Registered %d, want 0", n)
	}
	if cs := s.Consumers(); len(cs) != 1 || cs[0].Active {
		t.Errorf("consumers %+v: want the one, departed", cs)
	}
}

// A control datagram longer than 4 KiB is walked message by message as
// the module walks an skb: every message is answered in order, the walk
// stops at a message whose length runs past the end, and errors are
// acknowledged with the whole request echoed (success: header only,
// NLM_F_CAPPED).
func TestLongControlDatagram(t *testing.T) {
	s := listen(t, ServerConfig{})
	so, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	if err := so.setBuf(unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, 4<<20, "SO_RCVBUF"); err != nil {
		t.Fatal(err)
	}
	const stats = 300
	var b []byte
	for i := range stats {
		b = AppendControl(b, TypeGetStats, FlagRequest, uint32(i+1), 0)
	}
	b = AppendControl(b, TypeRegister, FlagRequest|FlagAck, 1000, 0)
	// Closing with a 6-byte payload, twice: the first succeeds, the second
	// finds nothing (ENOENT) and echoes all 22 bytes.
	for seq := uint32(1001); seq <= 1002; seq++ {
		m := AppendControl(nil, TypeClose, FlagRequest|FlagAck, seq, 0)
		m = append(m, 1, 2, 3, 4, 5, 6)
		ne.PutUint32(m, uint32(len(m)))
		b = append(b, m...)
		b = append(b, 0, 0) // NLMSG_ALIGN
	}
	b = AppendControl(b, TypeRegister, FlagRequest|FlagAck, 2000, 0)
	ne.PutUint32(b[len(b)-HeaderLen:], 1<<20) // runs past the end: not processed
	if len(b) <= 4096 {
		t.Fatalf("datagram of %d bytes", len(b))
	}
	if err := so.sendTo(b, s.PortID()); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(so, false, 0)
	msgs := newMsgs(64, 256)
	var got []Message
	for {
		so.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := r.read(msgs)
		if err != nil {
			break
		}
		for _, m := range msgs[:n] {
			got = append(got, Message{Buf: append([]byte(nil), m.Data()...), N: m.N})
		}
	}
	if len(got) != stats+3 {
		t.Fatalf("%d replies, want %d stats replies and 3 acks", len(got), stats)
	}
	for i := range stats {
		if h, _ := ParseHeader(got[i].Buf); h.Type != TypeStats || h.Seq != uint32(i+1) {
			t.Fatalf("reply %d: %+v, want IMP2_STATS seq %d", i, h, i+1)
		}
	}
	type ack struct {
		seq   uint32
		errno int32
		len   int
		flags uint16
	}
	want := []ack{{1000, 0, 36, 0x100}, {1001, 0, 36, 0x100}, {1002, -int32(unix.ENOENT), 44, 0}}
	for i, w := range want {
		m := got[stats+i].Buf
		h, _ := ParseHeader(m)
		a := ack{h.Seq, int32(ne.Uint32(m[HeaderLen:])), len(m), h.Flags}
		if h.Type != unix.NLMSG_ERROR || a != w {
			t.Errorf("ack %d: type %d %+v, want %+v", i, h.Type, a, w)
		}
	}
	if echo := got[stats+2].Buf[HeaderLen+4:]; ne.Uint32(echo) != 22 || string(echo[HeaderLen:HeaderLen+6]) != "\x01\x02\x03\x04\x05\x06" {
		t.Errorf("ENOENT ack echoes % x, want the whole 22-byte request", echo)
	}
	if n := s.Registered(); n != 0 {
		t.Errorf("%d registered: the message past the end was processed", n)
	}
}

// Every frame a fixed destination does not take is counted for it by
// class: with nobody bound, ECONNREFUSED for each.
func TestSendCountsByClass(t *testing.T) {
	port := uint32(0x7f000000) + uint32(os.Getpid()) // a port nobody binds
	s := listen(t, ServerConfig{Dest: port})
	s.SendBatch(frames(1, 5))
	s.Send(eventFrame(6))
	cs := s.Consumers()
	if len(cs) != 1 || cs[0].SendCounts != (SendCounts{ECONNREFUSED: 6}) || cs[0].Offered() != 6 {
		t.Errorf("fixed destination with nobody bound: %+v, want ECONNREFUSED 6", cs)
	}
}

// TestSendNumbered: each consumer's frames are numbered from 1 at its
// registration, whatever the frames carried, and a frame its full queue
// drops uses its number, so its losses are the gaps, as with the module.
func TestSendNumbered(t *testing.T) {
	s := listen(t, ServerConfig{})
	a := dial(t, Config{Peer: s.PortID(), RcvBuf: 4096})
	waitConsumers(t, s, 1)
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = eventFrame(7) // the number the frames carry is not used
	}
	var sent int
	for range 8 {
		n, err := s.SendNumbered(frames)
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	b := dial(t, Config{Peer: s.PortID()})
	waitConsumers(t, s, 2)
	if _, err := s.SendNumbered(frames[:2]); err != nil {
		t.Fatal(err)
	}
	if string(frames[0]) != string(eventFrame(7)) {
		t.Fatal("SendNumbered changed the caller's frame")
	}
	read := func(c *Conn) (seqs []uint32) {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			m, err := c.Receive()
			if err != nil {
				return seqs
			}
			h, _ := ParseHeader(m)
			seqs = append(seqs, h.Seq)
		}
	}
	var st SeqTracker
	st.FromOne = true
	got := read(a)
	for _, seq := range got {
		st.Observe(seq)
	}
	ca := s.Consumers()[0]
	t.Logf("consumer a: %d frames read, %d sent, %d EAGAIN", len(got), ca.Sent, ca.EAGAIN)
	if ca.EAGAIN == 0 {
		t.Skip("the 8 KiB queue never filled")
	}
	st.ObserveLast(ca.LastSeq)
	if uint64(len(got)) != ca.Sent || st.Missing() != ca.EAGAIN || ca.Sent+ca.EAGAIN != 8*64+2 {
		t.Errorf("a: read %d, gaps %d; the server sent %d and dropped %d of %d", len(got), st.Missing(), ca.Sent, ca.EAGAIN, 8*64+2)
	}
	if ca.LastSeq != 8*64+2 {
		t.Errorf("a's last number %d, want %d", ca.LastSeq, 8*64+2)
	}
	if got := read(b); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("b, registered later, got numbers %v; want [1 2]", got)
	}
}

// TestOnStats: the hook rewrites the counters a consumer is told.
func TestOnStats(t *testing.T) {
	s := listen(t, ServerConfig{OnStats: func(port uint32, st *Stats) { st.SelfDropped, st.EAGAIN = 5, 5 }})
	c := dial(t, Config{Peer: s.PortID()})
	waitConsumers(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Stats(ctx)
	if err != nil || !st.SelfRegistered || st.SelfDropped != 5 || st.EAGAIN != 5 {
		t.Errorf("Stats %+v, %v; want registered, self dropped 5, eagain 5", st, err)
	}
}
