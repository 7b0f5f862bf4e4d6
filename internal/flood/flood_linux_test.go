//go:build linux

package flood

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/netns"
	"golang.org/x/sys/unix"
)

func topology(t testing.TB) *netns.Topology {
	t.Helper()
	top, err := netns.New(context.Background(), "imp2t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	return top
}

// newIn prepares a flood to the destination namespace from the source one.
func newIn(t testing.TB, top *netns.Topology, cfg Config) *Flood {
	t.Helper()
	cfg.Dst = netns.DstAddr
	var f *Flood
	err := top.Src.Do(func() (err error) {
		f, err = New(cfg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPacedFloodArrives receives a paced flood with a raw socket in the
// destination namespace: every packet arrives once, carrying its number,
// the tag and the scheduled time the Schedule reports.
func TestPacedFloodArrives(t *testing.T) {
	top := topology(t)
	var rx int
	err := top.Dst.Do(func() (err error) {
		rx, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rx)
	if err := unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(time.Second))
	if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	const count = 500
	f := newIn(t, top, Config{Rate: 5000, Count: count, Duration: 5 * time.Second, Tag: 42})
	res, err := f.Run(context.Background())
	if err != nil || res.Sent != count || res.Errors != 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	seen := make([]bool, count)
	buf := make([]byte, 2048)
	for got := 0; got < count; {
		n, _, err := unix.Recvfrom(rx, buf, 0)
		if err != nil {
			t.Fatalf("after %d packets: %v", got, err)
		}
		ihl := int(buf[0]&0xf) * 4
		p, err := Parse(buf[ihl:n])
		if err != nil {
			continue // an echo reply
		}
		if p.Tag != 42 || p.Number >= count || seen[p.Number] {
			t.Fatalf("unexpected packet %+v", p)
		}
		seen[p.Number] = true
		if at, ok := f.Schedule().At(p.Number); !ok || at != p.Sched || at != res.Start+Offset(p.Number, 5000) {
			t.Errorf("packet %d carries %d, Schedule says %d, %v", p.Number, p.Sched, at, ok)
		}
		got++
	}
}

func TestUnpacedStopsAtCount(t *testing.T) {
	top := topology(t)
	const count = 3000
	f := newIn(t, top, Config{Count: count, Duration: 10 * time.Second, Batch: 64})
	res, err := f.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent+res.Errors != count || res.Elapsed >= 10*time.Second {
		t.Fatalf("Run = %+v", res)
	}
	prev := res.Start
	for n := range uint32(count) {
		at, ok := f.Schedule().At(n)
		if !ok || at < prev {
			t.Fatalf("At(%d) = %d, %v after %d", n, at, ok, prev)
		}
		prev = at
	}
	if _, ok := f.Schedule().At(count); ok {
		t.Error("At(count): ok")
	}
	if _, err := f.Run(context.Background()); err == nil {
		t.Error("second Run: no error")
	}
}

func TestUnpacedStopsAtDuration(t *testing.T) {
	top := topology(t)
	const d = 200 * time.Millisecond
	f := newIn(t, top, Config{Count: 1 << 26, Duration: d})
	t0 := time.Now()
	res, err := f.Run(context.Background())
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Sent >= 1<<26 || res.Elapsed != d || took < d || took > d+500*time.Millisecond {
		t.Fatalf("Run = %+v after %v", res, took)
	}
}

// TestPacedNeverAhead: at 1000 pps for 300 ms, only packets 0..299 are
// ever due, however the pacer's sleeps fall.
func TestPacedNeverAhead(t *testing.T) {
	top := topology(t)
	f := newIn(t, top, Config{Rate: 1000, Count: 1e6, Duration: 300 * time.Millisecond})
	res, err := f.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Sent+res.Errors > 300 {
		t.Fatalf("Run = %+v, want at most 300 packets", res)
	}
}

func TestRunCancel(t *testing.T) {
	top := topology(t)
	f := newIn(t, top, Config{Rate: 1000, Count: 1e6, Duration: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, err := f.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || res.Elapsed > 2*time.Second || res.Sent == 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
}

// TestRunAllocs: a flood 100 times longer allocates no more. The count is
// the process's, and on a loaded machine the runtime may allocate for a
// new thread while the flood's is blocked in sendmmsg: the long flood's
// count is the least of three, which a per-packet or per-batch allocation
// would raise in every one.
func TestRunAllocs(t *testing.T) {
	top := topology(t)
	allocs := func(cfg Config) float64 {
		f := newIn(t, top, cfg)
		return testing.AllocsPerRun(1, func() { f.ran.Store(false); f.Run(context.Background()) })
	}
	for _, rate := range []int{0, 200_000} {
		short := allocs(Config{Rate: rate, Count: 200, Duration: time.Second})
		long := allocs(Config{Rate: rate, Count: 20_000, Duration: time.Second})
		for range 2 {
			long = min(long, allocs(Config{Rate: rate, Count: 20_000, Duration: time.Second}))
		}
		t.Logf("rate %d: %v allocations for 200 packets, %v for 20000", rate, short, long)
		if long > short {
			t.Errorf("rate %d: %v allocations for 20000 packets, %v for 200", rate, long, short)
		}
	}
}
