// Package flood generates ICMP echo floods from a raw socket, paced or
// unpaced, always bounded in count and time, for the imp2 benchmarks.
//
// Packet format: an echo request whose id (high 16 bits) and sequence (low
// 16 bits) carry a 32-bit packet number, because netlink events of the
// imp2 module report id/seq but not the payload; the payload carries a tag
// and the scheduled send time for consumers that see it (NFLOG).
package flood

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/internal/icmp"
)

// Payload layout: tag (4 bytes), scheduled send time (8 bytes, CLOCK_MONOTONIC
// ns), both big-endian, then zero padding.
const MinPayload = 12

// Number is the packet number an ICMP id and sequence carry.
func Number(id, seq uint16) uint32 { return uint32(id)<<16 | uint32(seq) }

// Packet is what a flood packet carries.
type Packet struct {
	Number uint32
	Tag    uint32
	Sched  int64 // scheduled send time, pace.Monotonic ns
}

// ErrNotFlood reports an ICMP message that is not a flood packet.
var ErrNotFlood = errors.New("flood: not a flood echo request")

// Parse decodes a flood packet from an ICMP message (the IP payload).
func Parse(icmpMsg []byte) (Packet, error) {
	if len(icmpMsg) < icmp.HeaderLen+MinPayload || icmpMsg[0] != icmp.TypeEchoRequest || icmpMsg[1] != 0 {
		return Packet{}, ErrNotFlood
	}
	return Packet{
		Number: binary.BigEndian.Uint32(icmpMsg[4:]),
		Tag:    binary.BigEndian.Uint32(icmpMsg[8:]),
		Sched:  int64(binary.BigEndian.Uint64(icmpMsg[12:])),
	}, nil
}

// Offset is the scheduled time of packet n after the start at rate pps, in
// ns: exact integer arithmetic, so every consumer computes the same value.
func Offset(n uint32, rate int) int64 { return int64(n) * 1e9 / int64(rate) }

// Schedule maps packet numbers to scheduled send times without allocating.
// Paced floods compute it (start + Offset); unpaced ones record the time
// each sendmmsg batch was built, which every packet of the batch carries.
// It is safe to read while the flood runs.
type Schedule struct {
	rate  int
	batch uint32
	count uint64
	start atomic.Int64
	times []atomic.Int64 // unpaced: per batch of packets
}

// Start is the scheduled time of packet 0, or 0 before the flood starts.
func (s *Schedule) Start() int64 { return s.start.Load() }

// At returns the scheduled send time of packet n, and false when n is
// beyond the flood's count or not yet scheduled.
func (s *Schedule) At(n uint32) (int64, bool) {
	st := s.start.Load()
	if st == 0 || uint64(n) >= s.count {
		return 0, false
	}
	if s.rate > 0 {
		return st + Offset(n, s.rate), true
	}
	t := s.times[n/s.batch].Load()
	return t, t != 0
}

// Config bounds and paces a flood.
type Config struct {
	// Dst is the destination: an address of the benchmark range
	// 198.18.0.0/15 or loopback, nothing else.
	Dst netip.Addr
	// Rate is the target in packets per second; 0 sends as fast as the
	// kernel takes them.
	Rate int
	// Count and Duration bound the flood; both are required. An unpaced
	// flood keeps 8 bytes per Batch packets of Count for its Schedule.
	Count    int
	Duration time.Duration
	// Batch is the most packets per sendmmsg; 0 means 32.
	Batch int
	// PayloadLen is the ICMP payload length, at least MinPayload (the
	// default).
	PayloadLen int
	// Tag goes into every payload, so that consumers can tell runs apart.
	Tag uint32
}

// MaxCount is the most packets a flood sends: packet numbers are 32-bit.
const MaxCount = 1 << 32

var allowed = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("127.0.0.0/8")}

func (c *Config) check() error {
	if !c.Dst.Is4() {
		return fmt.Errorf("flood: destination %v is not IPv4", c.Dst)
	}
	if !allowed[0].Contains(c.Dst) && !allowed[1].Contains(c.Dst) {
		return fmt.Errorf("flood: destination %v outside %v and %v", c.Dst, allowed[0], allowed[1])
	}
	if c.Count <= 0 || c.Count > MaxCount {
		return fmt.Errorf("flood: count %d outside 1..%d", c.Count, MaxCount)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("flood: duration %v must be positive", c.Duration)
	}
	if c.Rate < 0 || c.Rate > 1e9 {
		return fmt.Errorf("flood: rate %d outside 0..1e9", c.Rate)
	}
	if c.Batch == 0 {
		c.Batch = 32
	}
	if c.Batch < 0 || c.Batch > 1024 {
		return fmt.Errorf("flood: batch %d outside 1..1024", c.Batch)
	}
	if c.PayloadLen == 0 {
		c.PayloadLen = MinPayload
	}
	if c.PayloadLen < MinPayload || c.PayloadLen > 65000 {
		return fmt.Errorf("flood: payload length %d outside %d..65000", c.PayloadLen, MinPayload)
	}
	return nil
}

// Result reports a finished flood.
type Result struct {
	// Sent is the number of packets the kernel accepted.
	Sent uint64
	// Errors is the number of packets it refused, ENOBUFS (a dropping
	// device or backlog) among them; their numbers are skipped.
	Errors, ENOBUFS uint64
	// LastErr is the last send error, if any.
	LastErr error
	// Start is the scheduled time of packet 0 (CLOCK_MONOTONIC ns);
	// Elapsed runs from it to the end of the last send, at most Duration.
	Start   int64
	Elapsed time.Duration
	// Rate is Sent / Elapsed in packets per second.
	Rate float64
	// MaxLag is how far behind its schedule a paced flood fell at worst
	// (latencies measured from the scheduled time include it).
	MaxLag time.Duration
}
