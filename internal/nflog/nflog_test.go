//go:build linux

package nflog

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
)

const group = 5

// setup builds a topology with the NFLOG rule and a consumer in the
// destination namespace.
func setup(t *testing.T, cfg Config) (*netns.Topology, *Conn) {
	t.Helper()
	top, err := netns.New(context.Background(), "imp2t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	if err := AddRule(context.Background(), top.Dst, group); err != nil {
		t.Fatal(err)
	}
	cfg.Group = group
	var c *Conn
	if err := top.Dst.Do(func() (err error) { c, err = Dial(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return top, c
}

func runFlood(t *testing.T, top *netns.Topology, cfg flood.Config) (*flood.Flood, flood.Result) {
	t.Helper()
	cfg.Dst = netns.DstAddr
	var f *flood.Flood
	if err := top.Src.Do(func() (err error) { f, err = flood.New(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	res, err := f.Run(context.Background())
	if err != nil || res.Errors != 0 {
		t.Fatalf("flood: %+v, %v", res, err)
	}
	return f, res
}

// drain reads until idle passes without a datagram.
func drain(t *testing.T, c *Conn, idle time.Duration, fn func(*Packet)) (overruns int) {
	t.Helper()
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		_, err := c.Read(fn)
		switch {
		case errors.Is(err, ErrOverrun):
			overruns++
		case errors.Is(err, os.ErrDeadlineExceeded):
			return overruns
		case err != nil:
			t.Fatal(err)
		}
	}
}

// TestPacedFloodLogged: every packet of a bounded, paced flood is logged
// once with its number, tag and scheduled time, with and without
// nfnetlink_log's batching.
func TestPacedFloodLogged(t *testing.T) {
	for _, qthresh := range []uint32{1, 0} {
		t.Run(map[uint32]string{1: "qthresh=1", 0: "default-batching"}[qthresh], func(t *testing.T) {
			top, c := setup(t, Config{QThresh: qthresh, RcvBuf: 4 << 20, Timestamps: true})
			const count, rate, tag = 2000, 5000, 0xabcd
			wall0 := time.Now().UnixNano()
			f, res := runFlood(t, top, flood.Config{Rate: rate, Count: count, Duration: 10 * time.Second, Tag: tag})
			seen := make([]bool, count)
			got, stamped := 0, 0
			deadline := time.Now().Add(5 * time.Second) // the batching flush timer is 1 s
			for got < count && time.Now().Before(deadline) {
				c.SetReadDeadline(deadline)
				_, err := c.Read(func(p *Packet) {
					if p.Tag != tag || p.Number >= count || seen[p.Number] {
						t.Errorf("unexpected packet %+v", *p)
						return
					}
					seen[p.Number] = true
					got++
					if at, _ := f.Schedule().At(p.Number); p.Sched != at || at != res.Start+flood.Offset(p.Number, rate) {
						t.Errorf("packet %d: Sched %d, schedule %d", p.Number, p.Sched, at)
					}
					if p.Recv < p.Sched {
						t.Errorf("packet %d received at %d before its scheduled send %d", p.Number, p.Recv, p.Sched)
					}
					if p.KernelWall != 0 {
						stamped++
						if p.RecvWall < p.KernelWall {
							t.Errorf("packet %d read at %d before the kernel stamped it at %d", p.Number, p.RecvWall, p.KernelWall)
						}
						if p.KernelWall < wall0-int64(time.Second) || p.KernelWall > time.Now().UnixNano()+int64(time.Second) {
							t.Errorf("packet %d: kernel time %d outside the run", p.Number, p.KernelWall)
						}
					}
				})
				if err != nil {
					m, _ := c.MemInfo()
					t.Fatalf("after %d packets: %v; stats %+v, SO_MEMINFO %+v, flood %+v", got, err, c.Stats(), m, res)
				}
			}
			s := c.Stats()
			m, err := c.MemInfo()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d packets in %d datagrams, %d with a kernel timestamp; %+v", got, s.Datagrams, stamped, s)
			if got != count || s.Packets != count || s.SeqLost != 0 || s.Overruns != 0 || m.Drops != 0 {
				t.Errorf("got %d of %d; stats %+v, SO_MEMINFO drops %d", got, count, s, m.Drops)
			}
			if stamped == 0 {
				t.Error("no packet carried NFULA_TIMESTAMP with Timestamps on")
			}
			if qthresh == 1 && s.Datagrams != count {
				t.Errorf("qthresh 1: %d datagrams for %d packets", s.Datagrams, count)
			}
			if qthresh == 0 && s.Datagrams >= count/2 {
				t.Errorf("default batching: %d datagrams for %d packets", s.Datagrams, count)
			}
		})
	}
}

// TestDropsAgree overruns a tiny receive buffer nobody reads: the packets
// missing from the NFULA_SEQ sequence equal the socket's SO_MEMINFO drops
// (one packet per datagram at qthresh 1), and ENOBUFS is reported unless
// NETLINK_NO_ENOBUFS is set.
func TestDropsAgree(t *testing.T) {
	for _, noENOBUFS := range []bool{false, true} {
		name := map[bool]string{false: "enobufs", true: "no-enobufs"}[noENOBUFS]
		t.Run(name, func(t *testing.T) {
			top, c := setup(t, Config{QThresh: 1, RcvBuf: 1, NoENOBUFS: noENOBUFS})
			const count = 2000
			runFlood(t, top, flood.Config{Rate: 50_000, Count: count, Duration: 10 * time.Second, Tag: 1})
			time.Sleep(50 * time.Millisecond)
			received := 0
			count1 := func(p *Packet) { received++ }
			overruns := drain(t, c, 200*time.Millisecond, count1)
			// A gap shows only when a later packet arrives: send one.
			runFlood(t, top, flood.Config{Count: 1, Duration: time.Second, Tag: 2})
			overruns += drain(t, c, 500*time.Millisecond, count1)
			s := c.Stats()
			m, err := c.MemInfo()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("received %d of %d, seq lost %d, SO_MEMINFO drops %d, ENOBUFS %d", received, count+1, s.SeqLost, m.Drops, overruns)
			if s.SeqLost == 0 || s.SeqLost != uint64(m.Drops) || uint64(received)+s.SeqLost != count+1 {
				t.Errorf("stats %+v, SO_MEMINFO drops %d, received %d of %d", s, m.Drops, received, count+1)
			}
			if want := !noENOBUFS; (overruns > 0) != want || s.Overruns != uint64(overruns) {
				t.Errorf("%d ENOBUFS reads (stats %d), want some: %v", overruns, s.Overruns, want)
			}
		})
	}
}

func TestBindBusy(t *testing.T) {
	top, _ := setup(t, Config{QThresh: 1})
	err := top.Dst.Do(func() error {
		c, err := Dial(Config{Group: group})
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Error("second consumer of the same group: no error")
	}
}

func TestReadAfterClose(t *testing.T) {
	_, c := setup(t, Config{})
	done := make(chan error)
	go func() {
		_, err := c.Read(func(*Packet) {})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake Read")
	}
}

// TestReadAllocs: reading a filled queue allocates nothing.
func TestReadAllocs(t *testing.T) {
	top, c := setup(t, Config{QThresh: 1, RcvBuf: 8 << 20})
	runFlood(t, top, flood.Config{Count: 2000, Duration: 10 * time.Second})
	time.Sleep(50 * time.Millisecond)
	got := 0
	fn := func(*Packet) { got++ }
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := c.Read(fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || got == 0 {
		t.Errorf("%v allocations per Read (%d packets read)", allocs, got)
	}
}
