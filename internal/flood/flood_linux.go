//go:build linux

package flood

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/icmp"
	"github.com/imp2/imp2/internal/mmsg"
	"github.com/imp2/imp2/internal/pace"
)

// spin is how long before a packet's time the pacer stops sleeping and
// busy-waits: clock_nanosleep with 1 ns timer slack wakes a few to tens of
// µs late. Shorter than pace.DefaultSpin: a flood's gaps are short and the
// spinning thread competes with the consumer it measures.
const spin = 50 * time.Microsecond

// Flood is a prepared flood: a raw ICMP socket and the buffers of one
// sendmmsg batch, allocated once so that sending allocates nothing.
type Flood struct {
	cfg   Config
	fd    int
	sched Schedule
	sa    unix.RawSockaddrInet4
	batch mmsg.Batch
	bufs  [][]byte
	base  uint32        // icmp.Sum of the constant words of a packet
	errno syscall.Errno // last send error; an error value would allocate
	ran   atomic.Bool
}

// New opens the raw socket (CAP_NET_RAW) in the calling thread's network
// namespace: call it inside netns.NS.Do to flood from a namespace.
// The kernel builds the IP header and picks the source address.
func New(cfg Config) (*Flood, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, fmt.Errorf("flood: raw socket: %w", err)
	}
	f := &Flood{cfg: cfg, fd: fd}
	if err := f.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return f, nil
}

func (f *Flood) setup() error {
	// Drop every ICMP type on input: the echo replies would otherwise be
	// cloned into this socket's queue for nothing.
	if err := unix.SetsockoptInt(f.fd, unix.SOL_RAW, unix.ICMP_FILTER, -1); err != nil {
		return os.NewSyscallError("setsockopt ICMP_FILTER", err)
	}
	// Without IP_RECVERR a raw socket hides ENOBUFS (a dropping device).
	if err := unix.SetsockoptInt(f.fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
		return os.NewSyscallError("setsockopt IP_RECVERR", err)
	}
	// A full send buffer must not block a flood beyond its bounds.
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(f.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_SNDTIMEO", err)
	}
	f.buffers()
	return nil
}

// buffers prepares the schedule and the batch: headers pointing at one
// slab of packets whose constant fields are written once.
func (f *Flood) buffers() {
	c := &f.cfg
	f.sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: c.Dst.As4()}
	f.sched = Schedule{rate: c.Rate, batch: uint32(c.Batch), count: uint64(c.Count)}
	if c.Rate == 0 {
		f.sched.times = make([]atomic.Int64, (c.Count+c.Batch-1)/c.Batch)
	}
	f.batch.Grow(c.Batch)
	mmsg.SetAddr(&f.batch, c.Batch, &f.sa)
	f.bufs = make([][]byte, c.Batch)
	size := icmp.HeaderLen + c.PayloadLen
	slab := make([]byte, size*c.Batch)
	payload := make([]byte, c.PayloadLen)
	binary.BigEndian.PutUint32(payload, c.Tag)
	for i := range f.bufs {
		b := icmp.AppendEcho(slab[i*size:i*size:(i+1)*size], 0, 0, payload)
		f.bufs[i] = b
		f.batch.Set(i, b)
	}
	// Everything but the checksum; the number and the time are 0 here.
	f.base = icmp.Sum(f.bufs[0][:2]) + icmp.Sum(f.bufs[0][4:])
}

// Schedule is the flood's schedule, to be read while it runs.
func (f *Flood) Schedule() *Schedule { return &f.sched }

// fill writes packet n scheduled at t into batch slot i. The checksum adds
// the 16-bit words of those two fields to the precomputed icmp.Sum of the
// constant ones (word by word here: icmp.Sum's loop would double the cost
// of a packet's fill).
func (f *Flood) fill(i int, n uint32, t int64) {
	b := f.bufs[i]
	binary.BigEndian.PutUint32(b[4:], n)
	binary.BigEndian.PutUint64(b[12:], uint64(t))
	u := uint64(t)
	sum := f.base + n>>16 + n&0xffff + uint32(u>>48) + uint32(u>>32&0xffff) + uint32(u>>16&0xffff) + uint32(u&0xffff)
	binary.BigEndian.PutUint16(b[2:], icmp.Fold(sum))
}

// Run sends the flood on a locked OS thread and returns when the count is
// sent, the duration has passed or ctx ends (then with ctx's error and the
// partial Result). A Flood runs once.
func (f *Flood) Run(ctx context.Context) (Result, error) {
	if !f.ran.CompareAndSwap(false, true) {
		return Result{}, fmt.Errorf("flood: already run")
	}
	var stop atomic.Bool
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	// The waiter locks the thread and sets its timer slack to 1 ns: the
	// default 50 µs would add to every pacer sleep.
	w := pace.NewWaiter(pace.NewClock(), spin)
	w.Stop = &stop
	w.Lock()
	defer w.Unlock()
	var r Result
	r.Start = w.Clock.Mono()
	f.sched.start.Store(r.Start)
	end := r.Start + int64(f.cfg.Duration)
	if f.cfg.Rate > 0 {
		f.paced(&r, end, w)
	} else {
		f.unpaced(&r, end, &stop)
	}
	// Packets are sent only before the end: a thread descheduled at the
	// deadline must not stretch the window.
	r.Elapsed = time.Duration(min(pace.Monotonic(), end) - r.Start)
	if f.errno != 0 {
		r.LastErr = os.NewSyscallError("sendmmsg", f.errno)
	}
	if r.Elapsed > 0 {
		r.Rate = float64(r.Sent) / r.Elapsed.Seconds()
	}
	return r, ctx.Err()
}

// paced sends every packet whose scheduled time has come (rate × elapsed −
// sent, at most a batch per call), then waits on w until the next one is
// due, sleeping and spinning for the last µs.
func (f *Flood) paced(r *Result, end int64, w *pace.Waiter) {
	count, rate := uint64(f.cfg.Count), f.cfg.Rate
	var next uint64
	for next < count && !w.Stop.Load() {
		now := pace.Monotonic()
		if now >= end {
			return
		}
		if lag := time.Duration(now - r.Start - Offset(uint32(next), rate)); lag > r.MaxLag {
			r.MaxLag = lag
		}
		k := 0
		for k < len(f.bufs) && next+uint64(k) < count {
			n := uint32(next + uint64(k))
			t := r.Start + Offset(n, rate)
			if t > now {
				break
			}
			f.fill(k, n, t)
			k++
		}
		if k > 0 {
			f.send(r, k, w.Stop)
			next += uint64(k)
			continue
		}
		w.Until(min(r.Start+Offset(uint32(next), rate), end) - r.Start)
	}
}

// unpaced sends full batches back to back, recording each batch's time.
func (f *Flood) unpaced(r *Result, end int64, stop *atomic.Bool) {
	count, batch := uint64(f.cfg.Count), uint64(len(f.bufs))
	for next := uint64(0); next < count && !stop.Load(); {
		t := pace.Monotonic()
		if t >= end {
			return
		}
		k := min(batch, count-next)
		for i := range k {
			f.fill(int(i), uint32(next+i), t)
		}
		f.sched.times[next/batch].Store(t)
		f.send(r, int(k), stop)
		next += k
	}
}

// send sends batch slots [0, k). A refused packet is counted and skipped.
func (f *Flood) send(r *Result, k int, stop *atomic.Bool) {
	for i := 0; i < k; {
		n, err := f.batch.Send(uintptr(f.fd), i, k, 0)
		r.Sent += uint64(n)
		i += n
		switch err {
		case 0:
			return
		case unix.EAGAIN: // send buffer full for SO_SNDTIMEO
			if !stop.Load() {
				continue
			}
			r.Errors += uint64(k - i)
			f.errno = err
			return
		case unix.ENOBUFS:
			r.ENOBUFS++
		}
		r.Errors++
		f.errno = err
		i++
	}
}

// Close closes the socket.
func (f *Flood) Close() error { return unix.Close(f.fd) }
