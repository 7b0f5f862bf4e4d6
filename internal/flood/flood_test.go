//go:build linux

package flood

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/icmp"
)

func TestNumber(t *testing.T) {
	for _, n := range []uint32{0, 1, 0xffff, 0x10000, 0xdeadbeef, 0xffffffff} {
		if got := Number(uint16(n>>16), uint16(n)); got != n {
			t.Errorf("Number(%#x, %#x) = %#x", n>>16, n&0xffff, got)
		}
	}
}

func TestOffsetExact(t *testing.T) {
	for _, c := range []struct {
		n    uint32
		rate int
		want int64
	}{
		{0, 1000, 0},
		{1, 1000, 1_000_000},
		{3, 3, 1_000_000_000},
		{1, 3, 333_333_333},
		{2, 3, 666_666_666},
		{100_000, 100_000, 1_000_000_000},
		{0xffffffff, 1, 0xffffffff * 1_000_000_000},
		{0xffffffff, 1_000_000_000, 4_294_967_295},
	} {
		if got := Offset(c.n, c.rate); got != c.want {
			t.Errorf("Offset(%d, %d) = %d, want %d", c.n, c.rate, got, c.want)
		}
	}
}

// TestPacerSchedule replays the paced loop's choice of due packets at
// chosen instants: at time t exactly the packets with Offset ≤ t are due,
// so rate × elapsed − sent are sent per tick, however late the tick.
func TestPacerSchedule(t *testing.T) {
	const rate = 10_000 // one packet per 100 µs
	due := func(elapsed int64) int {
		n := 0
		for Offset(uint32(n), rate) <= elapsed {
			n++
		}
		return n
	}
	for _, c := range []struct {
		elapsed int64
		want    int
	}{{0, 1}, {99_999, 1}, {100_000, 2}, {1_000_000, 11}, {1_000_000_000, 10_001}} {
		if got := due(c.elapsed); got != c.want {
			t.Errorf("due at %d ns = %d, want %d", c.elapsed, got, c.want)
		}
	}
	s := Schedule{rate: rate, count: 10}
	if _, ok := s.At(0); ok {
		t.Error("At before the start: ok")
	}
	s.start.Store(5e9)
	if got, ok := s.At(9); !ok || got != 5e9+900_000 {
		t.Errorf("At(9) = %d, %v", got, ok)
	}
	if _, ok := s.At(10); ok {
		t.Error("At(count): ok")
	}
}

func TestUnpacedSchedule(t *testing.T) {
	s := Schedule{batch: 4, count: 10, times: make([]atomic.Int64, 3)}
	s.start.Store(1)
	s.times[0].Store(100)
	s.times[1].Store(200)
	for n, want := range []int64{100, 100, 100, 100, 200, 200, 200, 200, 0, 0} {
		got, ok := s.At(uint32(n))
		if got != want || ok != (want != 0) {
			t.Errorf("At(%d) = %d, %v; want %d", n, got, ok, want)
		}
	}
}

func TestFillChecksumAndParse(t *testing.T) {
	cfg := Config{Dst: netip.MustParseAddr("198.18.0.2"), Count: 1, Duration: time.Second, Batch: 2, PayloadLen: 33, Tag: 0xfeedf00d}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	f := &Flood{cfg: cfg}
	f.buffers()
	for _, c := range []struct {
		n uint32
		t int64
	}{{0, 0}, {0xffffffff, -1}, {0x12345678, 1_700_000_000_123_456_789}, {7, 0x7fff_ffff_ffff_ffff}} {
		f.fill(1, c.n, c.t)
		b := f.bufs[1]
		if len(b) != icmp.HeaderLen+33 {
			t.Fatalf("packet length %d", len(b))
		}
		if s := icmp.Checksum(b); s != 0 {
			t.Errorf("packet %#x: checksum over packet = %#x, want 0", c.n, s)
		}
		typ, id, seq, err := icmp.ParseEcho(b)
		if err != nil || typ != icmp.TypeEchoRequest || Number(id, seq) != c.n {
			t.Errorf("ParseEcho = %d %#x %#x %v", typ, id, seq, err)
		}
		p, err := Parse(b)
		if err != nil || p != (Packet{Number: c.n, Tag: 0xfeedf00d, Sched: c.t}) {
			t.Errorf("Parse = %+v, %v", p, err)
		}
	}
	if _, err := Parse(f.bufs[1][:icmp.HeaderLen+MinPayload-1]); err == nil {
		t.Error("Parse of a short packet: no error")
	}
	if _, err := Parse(icmp.AppendEcho(nil, 1, 2, make([]byte, 20))[:0:0]); err == nil {
		t.Error("Parse of nothing: no error")
	}
}

func TestConfigRejects(t *testing.T) {
	ok := Config{Dst: netip.MustParseAddr("198.19.255.1"), Count: 1, Duration: time.Second}
	if err := ok.check(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"public address": func(c *Config) { c.Dst = netip.MustParseAddr("8.8.8.8") },
		"next to range":  func(c *Config) { c.Dst = netip.MustParseAddr("198.20.0.1") },
		"ipv6":           func(c *Config) { c.Dst = netip.MustParseAddr("::1") },
		"no count":       func(c *Config) { c.Count = 0 },
		"count > 2^32":   func(c *Config) { c.Count = MaxCount + 1 },
		"no duration":    func(c *Config) { c.Duration = 0 },
		"negative rate":  func(c *Config) { c.Rate = -1 },
		"short payload":  func(c *Config) { c.PayloadLen = MinPayload - 1 },
	} {
		c := ok
		mod(&c)
		if err := c.check(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
