package kmodtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
)

// TestLegacyConsumer runs a consumer written for the original module: it
// must register, read 16+8 bytes per event and print the right addresses.
func TestLegacyConsumer(t *testing.T) {
	cmd := exec.Command(guestLegacy, "4")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "registered" {
		t.Fatalf("legacy consumer did not register: %q", lines.Text())
	}
	ping(t, 0x4c01, 2)
	var got []string
	for len(got) < 4 && lines.Scan() {
		got = append(got, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("legacy consumer: %v (printed %q)", err, got)
	}
	want := []string{
		"src: 127.0.0.1, dest: 127.1.2.3", "src: 127.0.0.1, dest: 127.1.2.3",
		"src: 127.1.2.3, dest: 127.0.0.1", "src: 127.1.2.3, dest: 127.0.0.1",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("legacy consumer printed %q, want %q (in any order)", got, want)
	}
}

// TestExtendedEvent checks every extension field against the packet sent.
func TestExtendedEvent(t *testing.T) {
	c := dial(t, imp2.Config{Ack: true})
	before := monotonicNs(t)
	ping(t, 0x4c02, 1)
	evs, _ := readEvents(t, c, 2, 2*time.Second)
	after := monotonicNs(t)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (request and reply)", len(evs))
	}
	checkSequence(t, "consumer", evs)
	for i, want := range []struct {
		typ       uint8
		src, dest string
	}{{8, "127.0.0.1", "127.1.2.3"}, {0, "127.1.2.3", "127.0.0.1"}} {
		e := evs[i].ev
		if !e.Extended || e.Src.String() != want.src || e.Dest.String() != want.dest ||
			e.ICMPType != want.typ || e.ICMPCode != 0 || e.ICMPID != 0x4c02 || e.ICMPSeq != 1 ||
			e.Flags&imp2.EventFlagICMP == 0 || e.IfIndex != 1 || e.IPLen != 20+8+13 {
			t.Errorf("event %d = %+v, want type %d %s -> %s id 0x4c02 seq 1 on lo, ip_len 41", i, e, want.typ, want.src, want.dest)
		}
		if e.TimeNs < before || e.TimeNs > after {
			t.Errorf("event %d time %d outside [%d, %d]", i, e.TimeNs, before, after)
		}
	}
}

// TestTwoConsumersEachGetEveryEvent: the original kept one registration and
// a second consumer stole the stream.
func TestTwoConsumersEachGetEveryEvent(t *testing.T) {
	a := dial(t, imp2.Config{Ack: true})
	b := dial(t, imp2.Config{Ack: true})
	if s := stats(t, a); s.Consumers != 2 || !s.SelfRegistered {
		t.Fatalf("stats = %+v, want 2 consumers and self registered", s)
	}
	ping(t, 0x4c03, 50)
	for name, c := range map[string]*imp2.Conn{"a": a, "b": b} {
		evs, overruns := readEvents(t, c, 100, 2*time.Second)
		if len(evs) != 100 || overruns != 0 {
			t.Errorf("consumer %s: %d events, %d overruns; want 100, 0", name, len(evs), overruns)
		}
		checkSequence(t, name, evs)
	}
}

// TestCannotCloseAnotherConsumer: control messages naming a victim's port
// in nlmsg_pid act on the sender, never on the victim.
func TestCannotCloseAnotherConsumer(t *testing.T) {
	victim := dial(t, imp2.Config{Ack: true})
	fd := rawSocket(t, imp2.DefaultFamily)
	for _, typ := range []uint16{imp2.TypeClose, imp2.TypeRegister, imp2.TypeClose} {
		send(t, fd, imp2.AppendControl(nil, typ, 0, 0, victim.PortID()))
	}
	ping(t, 0x4c04, 3)
	evs, _ := readEvents(t, victim, 6, 2*time.Second)
	if len(evs) != 6 {
		t.Fatalf("victim got %d events after the forged close, want 6", len(evs))
	}
	if s := stats(t, victim); !s.SelfRegistered || s.Consumers != 1 {
		t.Errorf("stats = %+v: want the victim still the only consumer", s)
	}
}

// TestSIGKILLUnregisters: a consumer killed without IMP2_CLOSE must leave
// the set (NETLINK_URELEASE), so nothing is sent to its dead port.
func TestSIGKILLUnregisters(t *testing.T) {
	observer := dial(t, imp2.Config{Ack: true})
	cmd := exec.Command(guestLegacy)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "registered" {
		t.Fatalf("legacy consumer did not register: %q", lines.Text())
	}
	if s := stats(t, observer); s.Consumers != 2 {
		t.Fatalf("consumers = %d with the child registered, want 2", s.Consumers)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if s := stats(t, observer); s.Consumers != 1 {
		t.Fatalf("consumers = %d after SIGKILL, want 1", s.Consumers)
	}
	before := stats(t, observer)
	ping(t, 0x4c05, 5)
	readEvents(t, observer, 10, 2*time.Second)
	after := stats(t, observer)
	if after.ECONNREFUSED != before.ECONNREFUSED || after.UnicastOK-before.UnicastOK != 10 {
		t.Errorf("after SIGKILL: econnrefused %d -> %d, unicast_ok +%d; want no refusals and 10 sent",
			before.ECONNREFUSED, after.ECONNREFUSED, after.UnicastOK-before.UnicastOK)
	}
}

// waitUnicasts waits until the module has sent or dropped want events to
// the consumer on port, by /proc/net/imp2.
func waitUnicasts(t *testing.T, port uint32, want uint64) {
	t.Helper()
	var got uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got = 0
		for _, l := range strings.Split(string(procNet(t, "imp2")), "\n") {
			var p, sent, dropped uint64
			if n, _ := fmt.Sscanf(l, "consumer %d sent %d dropped %d", &p, &sent, &dropped); n == 3 && p == uint64(port) {
				got = sent + dropped
			}
		}
		if got >= want {
			return
		}
	}
	t.Fatalf("module sent or dropped %d events to port %d, want %d", got, port, want)
}

// TestOverflowAccounting fills a small receive buffer without reading. The
// module's EAGAIN count, the consumer's own drop count, SO_MEMINFO drops and
// the sequence gaps must agree, and the first read reports ENOBUFS.
func TestOverflowAccounting(t *testing.T) {
	for _, noENOBUFS := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoENOBUFS=%v", noENOBUFS), func(t *testing.T) {
			c := dial(t, imp2.Config{Ack: true, RcvBuf: 8192, NoENOBUFS: noENOBUFS})
			base := stats(t, c)
			const pings = 200 // 400 events, far more than 16 KiB hold
			ping(t, 0x4c06, pings)
			// The packets reach the hook after ping returns: wait until
			// the module has sent or dropped every event, or SO_MEMINFO
			// misses the last drops.
			waitUnicasts(t, c.PortID(), base.SelfSent+base.SelfDropped+2*pings)
			mi, err := c.MemInfo()
			if err != nil {
				t.Fatal(err)
			}
			evs, overruns := readEvents(t, c, 2*pings, time.Second)
			s := stats(t, c)
			gaps := 0
			last := base.SelfLastSeq
			for _, r := range evs {
				gaps += int(r.hdr.Seq - last - 1)
				last = r.hdr.Seq
			}
			gaps += int(s.SelfLastSeq - last) // dropped after the last one read
			dropped := s.SelfDropped - base.SelfDropped
			eagain := s.EAGAIN - base.EAGAIN
			t.Logf("rcvbuf %d: %d events read, rmem %d, dropped %d, eagain %d, meminfo drops %d, gaps %d, overruns %d",
				mi.RcvBuf, len(evs), mi.RmemAlloc, dropped, eagain, mi.Drops, gaps, overruns)
			if dropped == 0 {
				t.Fatal("no drops: the buffer did not overflow")
			}
			if uint64(len(evs))+dropped != 2*pings || eagain != dropped || uint64(mi.Drops) != dropped || uint64(gaps) != dropped {
				t.Errorf("accountings disagree: read %d + dropped %d (want %d), eagain %d, meminfo %d, gaps %d",
					len(evs), dropped, 2*pings, eagain, mi.Drops, gaps)
			}
			wantOverruns := 1
			if noENOBUFS {
				wantOverruns = 0
			}
			if overruns != wantOverruns {
				t.Errorf("ENOBUFS reported %d times, want %d", overruns, wantOverruns)
			}
		})
	}
}

// TestMalformedControlIgnored sends broken control messages; none may
// register anything or upset the kernel, and a valid message in front of a
// broken one still counts.
func TestMalformedControlIgnored(t *testing.T) {
	fd := rawSocket(t, imp2.DefaultFamily)
	hdr := func(length uint32, typ uint16) []byte {
		b := make([]byte, imp2.HeaderLen)
		imp2.PutHeader(b, imp2.Header{Len: length, Type: typ})
		return b
	}
	for name, msg := range map[string][]byte{
		"4 bytes":             {1, 2, 3, 4},
		"nlmsg_len below hdr": hdr(8, imp2.TypeRegister),
		"nlmsg_len past end":  hdr(1000, imp2.TypeRegister),
		"unknown type":        hdr(imp2.HeaderLen, 99),
		"kernel-only type":    hdr(imp2.HeaderLen, imp2.TypeEvent),
	} {
		send(t, fd, msg)
		c := dial(t, imp2.Config{Ack: true})
		if s := stats(t, c); s.Consumers != 1 {
			t.Fatalf("after %s: %d consumers, want 1 (only the checker)", name, s.Consumers)
		}
		c.Close()
	}
	// A valid registration followed by a truncated message in one datagram.
	send(t, fd, append(hdr(imp2.HeaderLen, imp2.TypeRegister), hdr(64, imp2.TypeClose)...))
	c := dial(t, imp2.Config{Ack: true})
	if s := stats(t, c); s.Consumers != 2 {
		t.Fatalf("valid message before a truncated one: %d consumers, want 2", s.Consumers)
	}
}

// TestUnitParameter loads the module on another unit.
func TestUnitParameter(t *testing.T) {
	run(t, "rmmod", "imp2")
	defer run(t, "insmod", guestModule)
	run(t, "insmod", guestModule, "unit=25")
	defer run(t, "rmmod", "imp2")
	c := dial(t, imp2.Config{Family: 25, Ack: true})
	ping(t, 0x4c07, 1)
	if evs, _ := readEvents(t, c, 2, 2*time.Second); len(evs) != 2 {
		t.Errorf("unit 25: %d events, want 2", len(evs))
	}
	c.Close()
	_, err := imp2.Dial(imp2.Config{})
	if !errors.Is(err, unix.EPROTONOSUPPORT) || !strings.Contains(err.Error(), "not loaded for family 31") {
		t.Errorf("Dial on unit 31 while loaded on 25: %v, want EPROTONOSUPPORT naming family 31", err)
	}
}

// TestNamespaces: each network namespace has its own socket and hook; a
// consumer sees its own namespace's traffic only.
func TestNamespaces(t *testing.T) {
	root := dial(t, imp2.Config{Ack: true})
	type result struct {
		evs []received
		err error
	}
	done := make(chan result)
	go func() {
		// The thread goes back to its namespace before it is unlocked:
		// Go would park, not end, the main thread if this ran there.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer func() {
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			orig.Close()
		}()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		if err := loUp(); err != nil {
			done <- result{err: err}
			return
		}
		c, err := imp2.Dial(imp2.Config{Ack: true})
		if err != nil {
			done <- result{err: fmt.Errorf("dial in the new namespace: %w", err)}
			return
		}
		defer c.Close()
		ping(t, 0x4c08, 3)
		evs, _ := readEvents(t, c, 6, 2*time.Second)
		done <- result{evs: evs}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.evs) != 6 {
		t.Errorf("consumer in the new namespace got %d events, want 6", len(r.evs))
	}
	if evs, _ := readEvents(t, root, 1, 500*time.Millisecond); len(evs) != 0 {
		t.Errorf("root namespace consumer saw %d events of the other namespace", len(evs))
	}
}

// TestReloadUnderFlood unloads and loads the module while ICMP floods the
// hook and a consumer is reading; a consumer socket pins the module.
func TestReloadUnderFlood(t *testing.T) {
	stop := make(chan struct{})
	flooded := make(chan int)
	go flood(stop, flooded)
	defer func() {
		close(stop)
		t.Logf("flood sent %d packets", <-flooded)
	}()
	for i := 0; i < 8; i++ {
		c, err := imp2.Dial(imp2.Config{Ack: true})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if evs, _ := readEvents(t, c, 20, 2*time.Second); len(evs) < 20 {
			t.Errorf("round %d: %d events under flood, want 20", i, len(evs))
		}
		if out, err := exec.Command("rmmod", "imp2").CombinedOutput(); err == nil {
			t.Fatalf("round %d: rmmod succeeded with a consumer socket open (%s)", i, out)
		}
		c.Close()
		run(t, "rmmod", "imp2")
		run(t, "insmod", guestModule)
	}
	if bad := dmesgProblems(t); len(bad) > 0 {
		t.Errorf("dmesg after reload loop:\n%s", strings.Join(bad, "\n"))
	}
}

// TestQueueExtension fills a small buffer without reading, then drains it
// and sends one more packet. The queue extension must count every queued
// event's truesize and stop within one truesize of sk_rcvbuf, where
// netlink_attachskb() refuses (kmod/imp2_uapi.h), and the first event after
// the gap must carry the occupancy that refused its predecessor.
func TestQueueExtension(t *testing.T) {
	c := dial(t, imp2.Config{Ack: true, RcvBuf: 8192})
	base := stats(t, c)
	const pings = 100 // 200 events, far more than 16 KiB hold
	ping(t, 0x4c0a, pings)
	waitUnicasts(t, c.PortID(), base.SelfSent+base.SelfDropped+2*pings)
	mi, err := c.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := readEvents(t, c, 2*pings, time.Second)
	if len(evs) == 0 || len(evs) == 2*pings {
		t.Fatalf("%d of %d events queued: want an overflow", len(evs), 2*pings)
	}
	var queued uint32
	for i, r := range evs {
		e := r.ev
		queued += e.TrueSize
		if !e.HasQueue || e.TrueSize == 0 || e.RcvBuf != mi.RcvBuf || e.RmemAlloc != queued ||
			e.RmemAlloc > e.RcvBuf+e.TrueSize || e.DropRmem != 0 {
			t.Fatalf("event %d (seq %d): %+v; want rcvbuf %d, rmem_alloc %d (the truesizes so far) <= rcvbuf + truesize, no drop_rmem",
				i, r.hdr.Seq, e, mi.RcvBuf, queued)
		}
	}
	last := evs[len(evs)-1].ev
	if last.RmemAlloc+last.TrueSize <= last.RcvBuf {
		t.Errorf("the last queued event left rmem_alloc %d, room for another %d below rcvbuf %d, yet the next was dropped",
			last.RmemAlloc, last.TrueSize, last.RcvBuf)
	}

	ping(t, 0x4c0b, 1)
	after, _ := readEvents(t, c, 2, time.Second)
	if len(after) != 2 {
		t.Fatalf("%d events after the drain, want 2", len(after))
	}
	e := after[0].ev
	t.Logf("rcvbuf %d, truesize %d: %d events queued to rmem_alloc %d; next event after a gap of %d: drop_rmem %d, rmem_alloc %d",
		mi.RcvBuf, last.TrueSize, len(evs), last.RmemAlloc, after[0].hdr.Seq-evs[len(evs)-1].hdr.Seq-1, e.DropRmem, e.RmemAlloc)
	// Nothing was read between the last queued event and the first drop.
	if e.DropRmem != last.RmemAlloc || e.RmemAlloc != e.TrueSize || after[1].ev.DropRmem != 0 {
		t.Errorf("after the drain: %+v then %+v; want drop_rmem %d (the full queue), rmem_alloc = truesize (an empty one), then no drop_rmem",
			e, after[1].ev, last.RmemAlloc)
	}
}
