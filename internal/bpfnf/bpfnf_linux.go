package bpfnf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
)

// Priority is imp2's hook priority, NF_IP_PRI_FILTER - 1 (kmod/imp2.c's
// imp2_nf_ops): the program runs where the module's hook does.
const Priority = -1

// Record layout: struct imp2_bpf_event of imp2.bpf.c.
const (
	RecordLen = imp2.QueueEventLen + 8 // the event with its queue extension, seq, reserved
	// RingRecordBytes is what one record takes in the ring: the record
	// and the ring's 8-byte header, rounded up to 8.
	RingRecordBytes = (RecordLen + 8 + 7) &^ 7
	seqOffset       = imp2.QueueEventLen
)

// RingCapacity is how many records a ring of size bytes holds: the
// kernel refuses a reservation that would fill it to the last byte
// (occupancy must stay below the size).
func RingCapacity(size int) int { return (size - 1) / RingRecordBytes }

// DefaultRingSize is the ring Open makes when Config.RingSize is 0.
const DefaultRingSize = 256 << 10

// ErrNoNetfilterLink is Open's error on a kernel without netfilter BPF
// programs and links.
var ErrNoNetfilterLink = errors.New("bpfnf: this kernel has no netfilter BPF programs and links (BPF_PROG_TYPE_NETFILTER with BPF_LINK_TYPE_NETFILTER: Linux 6.4 on, CONFIG_NETFILTER_BPF_LINK)")

// Hook is where the program runs.
type Hook int

const (
	// HookNetfilter is imp2's hook point: IPv4 PRE_ROUTING at Priority,
	// through a netfilter BPF link (6.4 on).
	HookNetfilter Hook = iota
	// HookTCIngress is the fallback for older kernels: tc ingress on
	// Config.Ifname (clsact, cls_bpf in direct-action mode), before the
	// IP layer. It is another hook point, and results must say so.
	HookTCIngress
)

func (h Hook) String() string {
	if h == HookTCIngress {
		return "tc ingress"
	}
	return "netfilter IPv4 PRE_ROUTING"
}

// Config sets up one program and its ring.
type Config struct {
	// RingSize is the ring's data size in bytes: a power of two, at least
	// a page. 0 means DefaultRingSize.
	RingSize int
	Hook     Hook
	// Ifname is the interface of HookTCIngress.
	Ifname string
}

// objects is what Open loads: one of the two programs, with the ring and
// the counters they share (loading only the one attached, so that a
// kernel without netfilter programs can still load the tc one).
type objects struct {
	imp2Maps
	imp2Variables
}

type netfilterObjects struct {
	objects
	Prog *ebpf.Program `ebpf:"imp2_hook"`
}

type tcObjects struct {
	objects
	Prog *ebpf.Program `ebpf:"imp2_tc"`
}

// Conn is one loaded program, attached in the network namespace of the
// thread that called Open, with its own ring and counters.
type Conn struct {
	objs objects
	prog *ebpf.Program
	// detach undoes the attachment: the netfilter link, or the tc filter.
	detach io.Closer
	ring   *ringbuf.Reader
	rec    ringbuf.Record
	// batch holds the records of one Read, sorted before they are handed
	// on (see Read).
	batch []record
}

type record [RecordLen]byte

func (r *record) seq() uint32 { return binary.NativeEndian.Uint32(r[seqOffset:]) }

// Record is one event as Read hands it on.
type Record struct {
	// Event is struct imp2_event with its queue extension, the payload
	// of the module's IMP2_K_MSG (imp2.ParseEvent reads it; imp2.bpf.c's
	// emit says what the queue fields mean for a ring); valid during the
	// callback only.
	Event []byte
	// Seq numbers the ICMP packets the program handled, from 1: a gap is
	// a record the ring had no room for.
	Seq uint32
}

// Open loads the program of cfg.Hook with a ring of cfg.RingSize and
// attaches it in the calling thread's network namespace (lock the
// thread, as netns.NS.Do does).
func Open(cfg Config) (*Conn, error) {
	size := cfg.RingSize
	if size == 0 {
		size = DefaultRingSize
	}
	if page := os.Getpagesize(); size < page || size&(size-1) != 0 {
		return nil, fmt.Errorf("bpfnf: ring size %d: want a power of two of at least a page (%d bytes)", size, page)
	}
	if cfg.Hook == HookNetfilter {
		if err := features.HaveProgramType(ebpf.Netfilter); err != nil {
			return nil, fmt.Errorf("%w (running %s): %v", ErrNoNetfilterLink, kernelRelease(), err)
		}
	}
	spec, err := loadImp2()
	if err != nil {
		return nil, err
	}
	spec.Maps[imp2MapEvents].MaxEntries = uint32(size)
	c := &Conn{}
	if err := c.load(spec, cfg.Hook); err != nil {
		return nil, fmt.Errorf("bpfnf: loading the %s program: %w", cfg.Hook, err)
	}
	if c.detach, err = attach(c.prog, cfg); err != nil {
		c.closeObjects()
		return nil, err
	}
	if c.ring, err = ringbuf.NewReader(c.objs.Events); err != nil {
		c.detach.Close()
		c.closeObjects()
		return nil, fmt.Errorf("bpfnf: ring reader: %w", err)
	}
	c.batch = make([]record, 0, size/RingRecordBytes)
	return c, nil
}

func (c *Conn) load(spec *ebpf.CollectionSpec, h Hook) error {
	if h == HookTCIngress {
		var o tcObjects
		err := spec.LoadAndAssign(&o, nil)
		c.objs, c.prog = o.objects, o.Prog
		return err
	}
	var o netfilterObjects
	err := spec.LoadAndAssign(&o, nil)
	c.objs, c.prog = o.objects, o.Prog
	return err
}

// attach attaches prog at cfg's hook.
func attach(prog *ebpf.Program, cfg Config) (io.Closer, error) {
	if cfg.Hook == HookTCIngress {
		return attachTCIngress(prog, cfg.Ifname)
	}
	l, err := link.AttachNetfilter(link.NetfilterOptions{
		Program:        prog,
		ProtocolFamily: link.NetfilterProtoIPv4,
		Hook:           link.NetfilterInetPreRouting,
		Priority:       Priority,
	})
	if errors.Is(err, ebpf.ErrNotSupported) {
		return nil, fmt.Errorf("%w (running %s): %v", ErrNoNetfilterLink, kernelRelease(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("bpfnf: attaching at IPv4 PRE_ROUTING, priority %d: %w", Priority, err)
	}
	return l, nil
}

func (c *Conn) closeObjects() error {
	return errors.Join(c.prog.Close(), c.objs.imp2Maps.Close())
}

// Read waits until deadline for records and hands on every record in the
// ring, in sequence order; it returns their number, and
// os.ErrDeadlineExceeded when none came.
//
// The ring orders records by reservation, the program numbers them just
// after: two CPUs can reserve in one order and number in the other. Read
// empties the ring before it hands anything on, and a record numbered
// below one already read had reserved its place before that one was
// committed, so it is in the same batch: sorting the batch restores the
// order, and a gap left is a failed reservation.
func (c *Conn) Read(deadline time.Time, fn func(*Record)) (int, error) {
	c.ring.SetDeadline(deadline)
	c.batch = c.batch[:0]
	for {
		err := c.ring.ReadInto(&c.rec)
		if err != nil {
			return 0, err
		}
		if len(c.rec.RawSample) < RecordLen {
			return 0, fmt.Errorf("bpfnf: a ring record of %d bytes, want %d", len(c.rec.RawSample), RecordLen)
		}
		c.batch = append(c.batch, record(c.rec.RawSample[:RecordLen]))
		if c.ring.AvailableBytes() == 0 {
			break
		}
	}
	if !slices.IsSortedFunc(c.batch, bySeq) {
		slices.SortFunc(c.batch, bySeq)
	}
	var r Record
	for i := range c.batch {
		r = Record{Event: c.batch[i][:imp2.QueueEventLen], Seq: c.batch[i].seq()}
		fn(&r)
	}
	return len(c.batch), nil
}

func bySeq(a, b record) int {
	// Serial number order: the counter may wrap at 2^32.
	return int(int32(a.seq() - b.seq()))
}

// QueuedBytes is the ring's occupancy: its producer position less its
// consumer position, read from the ring's shared pages (records not yet
// committed and their headers included).
func (c *Conn) QueuedBytes() int { return c.ring.AvailableBytes() }

// RingSize is the ring's data size in bytes.
func (c *Conn) RingSize() int { return c.ring.BufferSize() }

// Handled is the number of ICMP packets the program has handled: records
// written and reservations failed, the last sequence number given.
func (c *Conn) Handled() (uint64, error) { return readCounter(c.objs.Handled) }

// ReserveFailed is the number of records the full ring had no room for.
func (c *Conn) ReserveFailed() (uint64, error) { return readCounter(c.objs.ReserveFailed) }

// readCounter reads a counter from the mmap of the program's .bss: no
// syscall, so it can be polled while the ring is read.
func readCounter(v *ebpf.Variable) (uint64, error) {
	var n uint64
	if err := v.Get(&n); err != nil {
		return 0, fmt.Errorf("bpfnf: reading %v: %w", v, err)
	}
	return n, nil
}

// Close detaches the program and frees the ring; a Read in progress
// returns.
func (c *Conn) Close() error {
	return errors.Join(c.ring.Close(), c.detach.Close(), c.closeObjects())
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "an unknown kernel"
	}
	return "Linux " + unix.ByteSliceToString(u.Release[:])
}
