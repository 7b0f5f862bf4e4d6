package bench

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/bpfnf"
	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
)

// maxRing bounds the ring a consumer asks for: the overhead drain asks
// for 64 MiB of socket buffer, which as a ring of 48-byte records would
// be 128 MiB of vmalloc for a 20000-event burst.
const maxRing = 16 << 20

// bpfSource is imp2's hook as eBPF (internal/bpfnf): a netfilter program
// at IPv4 PRE_ROUTING with imp2's priority, attached through a netfilter
// BPF link in the destination namespace, writing imp2's event into a BPF
// ring buffer. Each consumer loads its own program with its own ring and
// counters, as each imp2 consumer has its own queue and numbers.
type bpfSource struct {
	dst  netns.NS
	hook bpfnf.Hook
}

// newBPFSource checks that the kernel can attach the program at hook, so
// that a kernel without netfilter BPF links (before 6.4) says so before
// the first sample.
func newBPFSource(topo *netns.Topology, hook bpfnf.Hook) (*bpfSource, error) {
	s := &bpfSource{dst: topo.Dst, hook: hook}
	c, err := s.open(0, false)
	if errors.Is(err, bpfnf.ErrNoNetfilterLink) {
		return nil, fmt.Errorf("%w; -source bpf-tc runs the same program at tc ingress, another hook point", err)
	}
	if err != nil {
		return nil, err
	}
	return s, c.close()
}

// family: the consumer hands on each record as the module's IMP2_K_MSG
// (bpfConsumer.read), so the trace reads like the module's.
func (s *bpfSource) family() uint16 { return imp2.DefaultFamily }
func (s *bpfSource) close() error   { return nil }

// open makes a ring of at least twice rcvbuf (the kernel doubles a socket
// buffer request; a ring's size is a power of two), at most maxRing.
// noENOBUFS means nothing to a ring.
func (s *bpfSource) open(rcvbuf int, _ bool) (consumer, error) {
	size := min(ringSizeFor(2*rcvbuf), maxRing)
	var c *bpfnf.Conn
	err := s.dst.Do(func() error {
		var err error
		c, err = bpfnf.Open(bpfnf.Config{RingSize: size, Hook: s.hook, Ifname: netns.Link})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &bpfConsumer{c: c}, nil
}

// ringSizeFor is the smallest power of two of at least n bytes and a page.
func ringSizeFor(n int) int {
	const page = 4096
	if n <= page {
		return page
	}
	return 1 << bits.Len(uint(n-1))
}

// bpfConsumer reads one program's ring.
type bpfConsumer struct {
	c *bpfnf.Conn
	// frame is the record as an IMP2_K_MSG, for the trace.
	frame [imp2.HeaderLen + imp2.QueueEventLen]byte
}

func (b *bpfConsumer) read(deadline time.Time, fn func(*event)) error {
	var e event
	_, err := b.c.Read(deadline, func(r *bpfnf.Record) {
		ev, err := imp2.ParseEvent(r.Event)
		// As for the module: only the flood's echo requests count.
		if err != nil || ev.Flags&imp2.EventFlagICMP == 0 || ev.ICMPType != 8 {
			return
		}
		imp2.PutHeader(b.frame[:], imp2.Header{Len: uint32(len(b.frame)), Type: imp2.TypeEvent, Seq: r.Seq})
		copy(b.frame[imp2.HeaderLen:], r.Event)
		e = event{
			number:    flood.Number(ev.ICMPID, ev.ICMPSeq),
			seq:       r.Seq,
			unicastNs: int64(ev.TimeNs),
			raw:       b.frame[:],
			hasQueue:  ev.HasQueue,
			rmemAlloc: int64(ev.RmemAlloc),
			truesize:  int64(ev.TrueSize),
			dropRmem:  int64(ev.DropRmem),
		}
		fn(&e)
	})
	return err
}

// memInfo reports the ring as a receive queue: its size, its occupancy
// from the producer and consumer positions, and its failed reservations
// as the drops.
func (b *bpfConsumer) memInfo() (imp2.MemInfo, error) {
	failed, err := b.c.ReserveFailed()
	if err != nil {
		return imp2.MemInfo{}, err
	}
	return imp2.MemInfo{
		RmemAlloc: uint32(b.c.QueuedBytes()),
		RcvBuf:    uint32(b.c.RingSize()),
		Drops:     uint32(failed),
	}, nil
}

// sourceDrops: the program counts the reservations the full ring refused
// (results.Drops.ModuleEAGAIN, the producer's own count).
func (b *bpfConsumer) sourceDrops(context.Context) (int64, bool, error) {
	n, err := b.c.ReserveFailed()
	return int64(n), err == nil, err
}

func (b *bpfConsumer) handled() (int64, bool, error) {
	n, err := b.c.Handled()
	return int64(n), err == nil, err
}

// kernelQueue: a ring has no ENOBUFS and no SO_MEMINFO drops; its drops
// are the program's count and the sequence gaps.
func (b *bpfConsumer) kernelQueue() bool { return false }

// eventBytes is what one event takes of the ring, for the burst probe.
func (b *bpfConsumer) eventBytes() int { return bpfnf.RingRecordBytes }

func (b *bpfConsumer) close() error { return b.c.Close() }

// checkBPFKernel refuses, before a VM boots, a kernel release older than
// 6.4: it has no netfilter BPF links.
func checkBPFKernel(release string) error {
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("kernel release %q: %w", release, err)
	}
	if major < 6 || major == 6 && minor < 4 {
		return fmt.Errorf("%w: kernel %s; run the bpf source on a newer kernel of the matrix (-kernel 6.12, 7.3 or 7.3-rt), or -source bpf-tc (the same program at tc ingress, another hook point)", bpfnf.ErrNoNetfilterLink, release)
	}
	return nil
}

// bpfDetail describes the source in results.json.
var bpfDetail = fmt.Sprintf("BPF_PROG_TYPE_NETFILTER program on a netfilter BPF link, IPv4 PRE_ROUTING priority %d (imp2's), imp2's event and a sequence number per packet into a BPF ring buffer (%d bytes a record), read with cilium/ebpf's ringbuf reader", bpfnf.Priority, bpfnf.RingRecordBytes)

// bpfTCDetail describes the tc variant, which is not imp2's hook point.
var bpfTCDetail = fmt.Sprintf("NOT imp2's hook point: the bpf source's program at tc ingress on %s (clsact qdisc, cls_bpf filter in direct-action mode), before the IP layer, for kernels without netfilter BPF links; imp2's event and a sequence number per packet into a BPF ring buffer (%d bytes a record), read with cilium/ebpf's ringbuf reader", netns.Link, bpfnf.RingRecordBytes)
