package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/icmp"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/nlsock"
	"github.com/imp2/imp2/internal/pace"
)

// emuSource is a user-space stand-in for the module: a raw ICMP socket in
// the destination namespace sees each echo request and an imp2.Server
// sends the event over NETLINK_USERSOCK with MSG_DONTWAIT. It is labelled
// an emulation in the results: a user-space sender gets EAGAIN itself, so
// the consumer never sees ENOBUFS or socket drops, and the hook runs after
// routing, in a process, not in softirq.
type emuSource struct {
	dst netns.NS
}

func (s *emuSource) family() uint16 { return imp2.UserSockFamily }
func (s *emuSource) close() error   { return nil }

// open starts a fresh emulator for each consumer, so that its sequence
// numbers start at 1 like the module's per-consumer numbers.
func (s *emuSource) open(rcvbuf int, noENOBUFS bool) (consumer, error) {
	h := &emuHook{}
	var c *imp2.Conn
	err := s.dst.Do(func() error {
		var err error
		if h.srv, err = imp2.Listen(imp2.ServerConfig{}); err != nil {
			return err
		}
		if h.sock, err = rawICMP(); err != nil {
			return err
		}
		c, err = imp2.Dial(imp2.Config{Family: imp2.UserSockFamily, Peer: h.srv.PortID(),
			RcvBuf: rcvbuf, NoENOBUFS: noENOBUFS, Ack: true})
		return err
	})
	if err != nil {
		h.close()
		return nil, fmt.Errorf("emu: %w", err)
	}
	h.wg.Add(1)
	go h.run()
	k := newIMP2Consumer(c, false, func(ctx context.Context, c *imp2.Conn) (int64, error) {
		for _, cs := range h.srv.Consumers() {
			if cs.PortID == c.PortID() {
				return int64(cs.EAGAIN), nil
			}
		}
		return 0, fmt.Errorf("emu: consumer %d unknown to the emulator", c.PortID())
	})
	return &emuConsumer{imp2Consumer: k, hook: h}, nil
}

type emuConsumer struct {
	*imp2Consumer
	hook *emuHook
}

func (e *emuConsumer) close() error {
	err := e.imp2Consumer.close()
	e.hook.close()
	return err
}

// rawICMP opens a raw socket that receives every ICMP packet delivered to
// the namespace, with a buffer large enough that bursts are not lost
// before the emulated hook, read blocking like the module's consumers.
func rawICMP() (*nlsock.Sock, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, fmt.Errorf("raw ICMP socket: %w", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
	return nlsock.New(fd, true)
}

// emuHook turns received echo requests into imp2 events.
type emuHook struct {
	srv  *imp2.Server
	sock *nlsock.Sock
	wg   sync.WaitGroup
	once sync.Once
}

const emuBatch = 64

func (h *emuHook) run() {
	defer h.wg.Done()
	var (
		bufs   [emuBatch][1500]byte
		batch  = nlsock.NewBatch(emuBatch, false)
		frames = make([][]byte, 0, emuBatch)
		out    [emuBatch][imp2.HeaderLen + imp2.EventLen]byte
		seq    uint32
	)
	for i := range bufs {
		batch.Set(i, bufs[i][:])
	}
	for {
		n, err := h.sock.Read(batch, emuBatch)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		frames = frames[:0]
		for i := 0; i < n; i++ {
			ev, ok := parseICMP(bufs[i][:batch.Len(i)])
			if !ok {
				continue
			}
			seq++
			ev.TimeNs = uint64(pace.Monotonic())
			frames = append(frames, imp2.AppendEventMessage(out[len(frames)][:0], seq, ev))
		}
		if len(frames) > 0 {
			h.srv.SendBatch(frames)
		}
	}
}

// parseICMP builds the event the module would send for an IPv4 packet:
// ICMP packets only, and the ICMP fields only where the module reads them
// (not in a later fragment).
func parseICMP(b []byte) (imp2.Event, bool) {
	p, err := icmp.ParseIPv4(b)
	if err != nil {
		return imp2.Event{}, false
	}
	ev := imp2.Event{Src: p.Src, Dest: p.Dst, Extended: true, IPLen: p.TotalLen}
	if p.ICMP != nil {
		ev.ICMPType, ev.ICMPCode = p.ICMP[0], p.ICMP[1]
		ev.ICMPID = binary.BigEndian.Uint16(p.ICMP[4:6])
		ev.ICMPSeq = binary.BigEndian.Uint16(p.ICMP[6:8])
		ev.Flags = imp2.EventFlagICMP
	}
	return ev, true
}

func (h *emuHook) close() {
	h.once.Do(func() {
		if h.sock != nil {
			h.sock.Close() // the reader returns within nlsock.Poll
		}
		h.wg.Wait()
		if h.srv != nil {
			h.srv.Close()
		}
	})
}
