package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
)

// A source turns ICMP packets arriving in the destination namespace into
// netlink events, and opens consumers that read them.
type source interface {
	// open makes a consumer in the destination namespace.
	open(rcvbuf int, noENOBUFS bool) (consumer, error)
	// family is the netlink family of the frames consumers read.
	family() uint16
	close() error
}

// A consumer reads events of one source through one socket.
type consumer interface {
	// read waits until deadline for a batch and calls fn for every event
	// in it; it returns imp2.ErrOverrun for ENOBUFS and
	// os.ErrDeadlineExceeded when nothing came.
	read(deadline time.Time, fn func(e *event)) error
	memInfo() (imp2.MemInfo, error)
	// sourceDrops is the producer's own count of events it could not
	// queue to this consumer (the module's EAGAIN, the emulator's); ok is
	// false when the producer keeps none.
	sourceDrops(ctx context.Context) (dropped int64, ok bool, err error)
	// handled is the producer's count of events it has dealt with for this
	// consumer so far, queued or dropped, read without touching the
	// consumer's socket (whose queue may be full); ok is false when the
	// producer exposes none.
	handled() (n int64, ok bool, err error)
	// kernelQueue reports whether the events are queued by a kernel sender,
	// so that overruns show as ENOBUFS and SO_MEMINFO drops (not for the
	// emulator: a user-space sender gets EAGAIN itself).
	kernelQueue() bool
	close() error
}

// event is one netlink event matched to the flood packet behind it.
type event struct {
	number uint32 // flood packet number, from ICMP id/seq
	seq    uint32 // per-consumer sequence number
	// unicastNs is the producer's CLOCK_MONOTONIC time of sending the
	// event (imp2's extension; the emulator stamps the same), 0 if unknown.
	unicastNs int64
	raw       []byte // the netlink message, valid during the callback
	// The module's queue extension (imp2.Event), when hasQueue.
	hasQueue                      bool
	rmemAlloc, truesize, dropRmem int64
}

// imp2Consumer reads imp2 events (module or emulator) with imp2.Conn.
type imp2Consumer struct {
	c    *imp2.Conn
	msgs []imp2.Message
	// drops asks the producer for its account of this consumer.
	drops func(ctx context.Context, c *imp2.Conn) (int64, error)
	// handledBy reads the producer's handled count of this consumer, nil
	// when the producer has none.
	handledBy func(c *imp2.Conn) (int64, error)
	kernel    bool
}

func newIMP2Consumer(c *imp2.Conn, kernel bool, drops func(context.Context, *imp2.Conn) (int64, error)) *imp2Consumer {
	msgs := make([]imp2.Message, 64)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 256)
	}
	return &imp2Consumer{c: c, msgs: msgs, drops: drops, kernel: kernel}
}

func (k *imp2Consumer) read(deadline time.Time, fn func(*event)) error {
	k.c.SetReadDeadline(deadline)
	n, err := k.c.ReadBatch(k.msgs)
	if err != nil {
		return err
	}
	var e event
	for i := range k.msgs[:n] {
		b := k.msgs[i].Data()
		h, err := imp2.ParseHeader(b)
		if err != nil || h.Type != imp2.TypeEvent {
			continue
		}
		ev, err := imp2.ParseEvent(b[imp2.HeaderLen:h.Len])
		// Only echo requests come from the flood; the namespace sends
		// replies, which the PRE_ROUTING hook does not see.
		if err != nil || !ev.Extended || ev.Flags&imp2.EventFlagICMP == 0 || ev.ICMPType != 8 {
			continue
		}
		e = event{
			number:    flood.Number(ev.ICMPID, ev.ICMPSeq),
			seq:       h.Seq,
			unicastNs: int64(ev.TimeNs),
			raw:       b[:h.Len],
			hasQueue:  ev.HasQueue,
			rmemAlloc: int64(ev.RmemAlloc),
			truesize:  int64(ev.TrueSize),
			dropRmem:  int64(ev.DropRmem),
		}
		fn(&e)
	}
	return nil
}

func (k *imp2Consumer) memInfo() (imp2.MemInfo, error) { return k.c.MemInfo() }

func (k *imp2Consumer) sourceDrops(ctx context.Context) (int64, bool, error) {
	d, err := k.drops(ctx, k.c)
	return d, err == nil, err
}

func (k *imp2Consumer) handled() (int64, bool, error) {
	if k.handledBy == nil {
		return 0, false, nil
	}
	n, err := k.handledBy(k.c)
	return n, err == nil, err
}

func (k *imp2Consumer) kernelQueue() bool { return k.kernel }

func (k *imp2Consumer) close() error { return k.c.Close() }

// kmodSource is the imp2 module: it must be loaded (on the host, or in the
// VM, Options.VM). Every namespace has its own hook and counters, so the
// fresh destination namespace's counters belong to this run alone.
type kmodSource struct {
	dst netns.NS
}

func newKmodSource(topo *netns.Topology) (*kmodSource, error) {
	s := &kmodSource{dst: topo.Dst}
	c, err := s.dial(0, false)
	if err != nil {
		return nil, err
	}
	c.Close()
	return s, nil
}

func (s *kmodSource) dial(rcvbuf int, noENOBUFS bool) (*imp2.Conn, error) {
	var c *imp2.Conn
	err := s.dst.Do(func() error {
		var err error
		c, err = imp2.Dial(imp2.Config{RcvBuf: rcvbuf, NoENOBUFS: noENOBUFS, Ack: true})
		return err
	})
	if errors.Is(err, unix.EPROTONOSUPPORT) {
		return nil, fmt.Errorf("%w (on a host that cannot load modules, run the sweep in the VM)", err)
	}
	return c, err
}

func (s *kmodSource) open(rcvbuf int, noENOBUFS bool) (consumer, error) {
	c, err := s.dial(rcvbuf, noENOBUFS)
	if err != nil {
		return nil, err
	}
	k := newIMP2Consumer(c, true, func(ctx context.Context, c *imp2.Conn) (int64, error) {
		st, err := c.Stats(ctx)
		return int64(st.SelfDropped), err
	})
	k.handledBy = func(c *imp2.Conn) (int64, error) { return s.handled(c.PortID()) }
	return k, nil
}

// handled is the module's sent + dropped count of the consumer on port.
func (s *kmodSource) handled(port uint32) (int64, error) {
	sent, dropped, err := s.counts(port)
	return sent + dropped, err
}

// counts are the module's sent and dropped counts of the consumer on port,
// from the destination namespace's /proc/net/imp2: unlike IMP2_GET_STATS,
// whose reply would have to fit into the consumer's (full) queue and
// would be read among its events, it leaves the socket alone.

func (s *kmodSource) counts(port uint32) (sent, dropped int64, err error) {
	var b []byte
	if err := s.dst.Do(func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/imp2")
		return err
	}); err != nil {
		return 0, 0, err
	}
	return consumerCounts(b, port)
}

// consumerCounts reads the sent and dropped counts of the consumer on
// port from the text of /proc/net/imp2 (imp2_proc_show).
func consumerCounts(proc []byte, port uint32) (sent, dropped int64, err error) {
	for _, l := range strings.Split(string(proc), "\n") {
		var p uint32
		if n, _ := fmt.Sscanf(l, "consumer %d sent %d dropped %d", &p, &sent, &dropped); n == 3 && p == port {
			return sent, dropped, nil
		}
	}
	return 0, 0, fmt.Errorf("consumer %d is not in the module's /proc/net/imp2", port)
}

func (s *kmodSource) family() uint16 { return imp2.DefaultFamily }
func (s *kmodSource) close() error   { return nil }
