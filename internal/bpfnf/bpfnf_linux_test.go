package bpfnf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/pace"
)

// requireEnv makes every skip below a failure: the VM suite
// (internal/bpfvm) sets it, so that a kernel with netfilter BPF links
// cannot pass it by skipping.
const requireEnv = "IMP2_BPF_REQUIRE"

// bpfLinksExpected says whether this kernel should have netfilter BPF
// links: from 6.4 on.
func bpfLinksExpected(t *testing.T) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	rel := unix.ByteSliceToString(u.Release[:])
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	return major > 6 || major == 6 && minor >= 4
}

// eachHook runs test once per hook, as subtests: the netfilter program
// (skipped as expected before 6.4) and the tc ingress fallback.
func eachHook(t *testing.T, test func(t *testing.T, h Hook)) {
	for _, h := range []Hook{HookNetfilter, HookTCIngress} {
		t.Run(strings.ReplaceAll(h.String(), " ", "_"), func(t *testing.T) { test(t, h) })
	}
}

// setUp builds a topology and opens a program of ringSize at hook h in
// its destination namespace, or skips where this host cannot.
func setUp(t *testing.T, h Hook, ringSize int) (*netns.Topology, *Conn) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv(requireEnv) != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root (network namespaces, BPF)")
	}
	ctx := context.Background()
	topo, err := netns.New(ctx, "imp2bpf")
	if err != nil {
		skip("no network namespaces here: %v", err)
	}
	t.Cleanup(func() { topo.Close() })
	var c *Conn
	err = topo.Dst.Do(func() error {
		var err error
		c, err = Open(Config{RingSize: ringSize, Hook: h, Ifname: netns.Link})
		return err
	})
	if errors.Is(err, ErrNoNetfilterLink) {
		if !bpfLinksExpected(t) {
			t.Skipf("as expected on this kernel: %v", err)
		}
		skip("a kernel of 6.4 or later, built without them? %v", err)
	}
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			skip("no BPF here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return topo, c
}

// TestOldKernelSaysSo: on a kernel before 6.4, Open names what is missing.
func TestOldKernelSaysSo(t *testing.T) {
	if bpfLinksExpected(t) {
		t.Skip("this kernel has netfilter BPF links")
	}
	_, err := Open(Config{RingSize: 4096})
	if !errors.Is(err, ErrNoNetfilterLink) || !strings.Contains(err.Error(), "Linux 6.4") {
		t.Fatalf("Open on an old kernel: %v, want ErrNoNetfilterLink", err)
	}
}

func TestOpenRejectsBadRingSize(t *testing.T) {
	for _, n := range []int{1000, 2048, 3 << 12, -4096} {
		if _, err := Open(Config{RingSize: n}); err == nil || !strings.Contains(err.Error(), "power of two") {
			t.Errorf("ring size %d: %v, want a power-of-two error", n, err)
		}
	}
}

// runFlood sends cfg's flood from the source namespace; it is an error
// when not every packet went out.
func runFlood(topo *netns.Topology, cfg flood.Config) (flood.Result, error) {
	cfg.Dst = netns.DstAddr
	var f *flood.Flood
	if err := topo.Src.Do(func() error {
		var err error
		f, err = flood.New(cfg)
		return err
	}); err != nil {
		return flood.Result{}, err
	}
	defer f.Close()
	r, err := f.Run(context.Background())
	if err == nil && r.Sent != uint64(cfg.Count) {
		err = fmt.Errorf("flood: sent %d of %d (%v)", r.Sent, cfg.Count, r.LastErr)
	}
	return r, err
}

// floodInBackground runs a flood while the test reads; the channel gives
// its result.
func floodInBackground(topo *netns.Topology, cfg flood.Config) <-chan floodResult {
	done := make(chan floodResult, 1)
	go func() {
		r, err := runFlood(topo, cfg)
		done <- floodResult{r, err}
	}()
	return done
}

type floodResult struct {
	r   flood.Result
	err error
}

func sendFlood(t *testing.T, topo *netns.Topology, cfg flood.Config) {
	t.Helper()
	if _, err := runFlood(topo, cfg); err != nil {
		t.Fatal(err)
	}
}

// waitHandled waits until the program has handled n packets.
func waitHandled(t *testing.T, c *Conn, n uint64) {
	t.Helper()
	var got uint64
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		var err error
		if got, err = c.Handled(); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
	}
	t.Fatalf("the program handled %d of %d packets", got, n)
}

// drain reads until the ring stays empty for idle.
func drain(t *testing.T, c *Conn, idle time.Duration, fn func(*Record)) {
	t.Helper()
	for {
		_, err := c.Read(time.Now().Add(idle), fn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestFloodDeliversEveryEvent: a paced flood the ring can take arrives
// whole, in order, with imp2's fields.
func TestFloodDeliversEveryEvent(t *testing.T) { eachHook(t, floodDeliversEveryEvent) }

func floodDeliversEveryEvent(t *testing.T, h Hook) {
	topo, c := setUp(t, h, 0)
	const count = 2000
	var ifindex int
	if err := topo.Dst.Do(func() error {
		ifc, err := net.InterfaceByName(netns.Link)
		if err == nil {
			ifindex = ifc.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	done := floodInBackground(topo, flood.Config{Rate: 4000, Count: count, Duration: 10 * time.Second})
	seen := make(map[uint32]bool, count)
	var want uint32 = 1
	var last uint64
	check := func(rec *Record) {
		now := pace.Monotonic()
		ev, err := imp2.ParseEvent(rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		n := flood.Number(ev.ICMPID, ev.ICMPSeq)
		switch {
		case rec.Seq != want:
			t.Fatalf("record %d: seq %d, want %d", want, rec.Seq, want)
		case ev.Src != netns.SrcAddr || ev.Dest != netns.DstAddr:
			t.Fatalf("seq %d: %v -> %v, want %v -> %v", rec.Seq, ev.Src, ev.Dest, netns.SrcAddr, netns.DstAddr)
		case ev.ICMPType != 8 || ev.ICMPCode != 0 || ev.Flags != 1:
			t.Fatalf("seq %d: ICMP type %d code %d flags %#x, want an echo request (8, 0, ICMP)", rec.Seq, ev.ICMPType, ev.ICMPCode, ev.Flags)
		case int(ev.IfIndex) != ifindex:
			t.Fatalf("seq %d: ifindex %d, want %s's %d", rec.Seq, ev.IfIndex, netns.Link, ifindex)
		case ev.IPLen != 20+8+flood.MinPayload:
			t.Fatalf("seq %d: IP length %d, want %d", rec.Seq, ev.IPLen, 20+8+flood.MinPayload)
		case n >= count || seen[n]:
			t.Fatalf("seq %d: packet number %d again or out of 0..%d", rec.Seq, n, count-1)
		case !ev.HasQueue || ev.RcvBuf != uint32(c.RingSize()) || ev.TrueSize != RingRecordBytes || ev.RmemAlloc < RingRecordBytes || ev.RmemAlloc > ev.RcvBuf || ev.DropRmem != 0:
			t.Fatalf("seq %d: queue extension %+v; want the ring's %d bytes, %d a record, occupancy within, no drop", rec.Seq, ev, c.RingSize(), RingRecordBytes)
		case ev.TimeNs < last || int64(ev.TimeNs) > now:
			t.Fatalf("seq %d: time %d not between the previous event's %d and the read's %d (CLOCK_MONOTONIC)", rec.Seq, ev.TimeNs, last, now)
		}
		seen[n] = true
		last = ev.TimeNs
		want++
	}
	for end := time.Now().Add(30 * time.Second); len(seen) < count && time.Now().Before(end); {
		if _, err := c.Read(time.Now().Add(100*time.Millisecond), check); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	fr := <-done
	if fr.err != nil {
		t.Fatal(fr.err)
	}
	if len(seen) != count {
		t.Fatalf("%d of %d events", len(seen), count)
	}
	if int64(last) < fr.r.Start {
		t.Fatalf("last event at %d, before the flood started at %d", last, fr.r.Start)
	}
	handled, err := c.Handled()
	if err != nil {
		t.Fatal(err)
	}
	failed, err := c.ReserveFailed()
	if err != nil {
		t.Fatal(err)
	}
	if handled != count || failed != 0 {
		t.Fatalf("handled %d, reservations failed %d; want %d and 0", handled, failed, count)
	}
}

// TestTinyRingHoldsExactly: a one-page ring that nobody reads holds
// RingCapacity records of a burst, the first ones, and counts every other
// as a failed reservation; the next record's number shows the same count
// as a gap, and its queue extension the full ring that refused them.
func TestTinyRingHoldsExactly(t *testing.T) { eachHook(t, tinyRingHoldsExactly) }

func tinyRingHoldsExactly(t *testing.T, h Hook) {
	page := os.Getpagesize()
	topo, c := setUp(t, h, page)
	const burst = 500
	sendFlood(t, topo, flood.Config{Count: burst, Duration: 10 * time.Second})
	waitHandled(t, c, burst)

	var seqs imp2.SeqTracker
	seqs.FromOne = true
	var held uint32
	drain(t, c, 100*time.Millisecond, func(r *Record) {
		held++
		if r.Seq != held {
			t.Fatalf("held record %d has seq %d", held, r.Seq)
		}
		seqs.Observe(r.Seq)
	})
	capacity := uint32(RingCapacity(page))
	if held != capacity {
		t.Fatalf("a %d-byte ring held %d records, want %d", page, held, capacity)
	}
	sendFlood(t, topo, flood.Config{Count: 1, Duration: time.Second})
	got := 0
	for end := time.Now().Add(5 * time.Second); got == 0 && time.Now().Before(end); {
		c.Read(time.Now().Add(100*time.Millisecond), func(r *Record) {
			got++
			seqs.Observe(r.Seq)
			if r.Seq != burst+1 {
				t.Fatalf("the packet after the burst has seq %d, want %d", r.Seq, burst+1)
			}
			ev, err := imp2.ParseEvent(r.Event)
			if full := int(capacity) * RingRecordBytes; err != nil || ev.DropRmem != uint32(full) || ev.RmemAlloc != RingRecordBytes {
				t.Fatalf("the packet after the burst: %+v, %v; want drop_rmem %d (the full ring), rmem_alloc %d (itself)", ev, err, full, RingRecordBytes)
			}
		})
	}
	failed, err := c.ReserveFailed()
	if err != nil {
		t.Fatal(err)
	}
	if got != 1 || failed != uint64(burst-capacity) || seqs.Missing() != failed {
		t.Fatalf("after the burst: %d records read, %d reservations failed (want %d), %d sequence gaps", got, failed, burst-capacity, seqs.Missing())
	}
}

// TestTinyRingDropsCountedExactly: a one-page ring read while an unpaced
// flood fills it: the gaps the reader sees are the program's failed
// reservations, no more, no fewer, and every handled packet is either.
func TestTinyRingDropsCountedExactly(t *testing.T) { eachHook(t, tinyRingDropsCountedExactly) }

func tinyRingDropsCountedExactly(t *testing.T, h Hook) {
	topo, c := setUp(t, h, os.Getpagesize())
	const count = 20000
	done := floodInBackground(topo, flood.Config{Count: count, Duration: 20 * time.Second})
	var seqs imp2.SeqTracker
	seqs.FromOne = true
	var received uint64
	observe := func(r *Record) {
		received++
		seqs.Observe(r.Seq)
	}
	for finished := false; !finished; {
		select {
		case fr := <-done:
			if fr.err != nil {
				t.Fatal(fr.err)
			}
			finished = true
		default:
		}
		if _, err := c.Read(time.Now().Add(50*time.Millisecond), observe); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	waitHandled(t, c, count)
	drain(t, c, 200*time.Millisecond, observe)
	// A last packet reveals the drops after the last record read.
	sendFlood(t, topo, flood.Config{Count: 1, Duration: time.Second})
	waitHandled(t, c, count+1)
	drain(t, c, 200*time.Millisecond, observe)

	failed, err := c.ReserveFailed()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d packets: %d records read, %d reservations failed, %d gaps, %d restarts", count+1, received, failed, seqs.Missing(), seqs.Restarts())
	if seqs.Missing() != failed || received+failed != count+1 || seqs.Restarts() != 0 {
		t.Fatalf("%d records read, %d reservations failed, %d sequence gaps, %d restarts: want gaps = failures, read + failed = %d, no restart",
			received, failed, seqs.Missing(), seqs.Restarts(), count+1)
	}
}
