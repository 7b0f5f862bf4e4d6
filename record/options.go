package record

import (
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/pcapnl"
)

// Options are the recorder's settings. Start from DefaultOptions: the zero
// value of a field means what its comment says, not the default.
type Options struct {
	// Family is the netlink unit, 0 to 31: imp2.DefaultFamily (31) for the
	// module, imp2.UserSockFamily (2) for a user-space producer.
	Family int
	// Peer is the port the control messages go to: 0 is the module, any
	// other a user-space producer (an imp2.Server, imp2-replay).
	Peer uint32
	// Ack waits for the peer to acknowledge the registration; the module
	// and imp2.Server do, the original module never does.
	Ack bool
	// RcvBuf is the socket receive buffer in bytes (see imp2.Config),
	// at most imp2.MaxRcvBuf, what the kernel's int can hold doubled;
	// 0 keeps the system default.
	RcvBuf Size
	// NoENOBUFS sets NETLINK_NO_ENOBUFS: overruns drop silently, still
	// seen as sequence gaps and SO_MEMINFO drops.
	NoENOBUFS bool

	// Path is the trace file to create. An existing regular file is
	// refused (ErrExists) unless Force; devices and FIFOs are written as
	// they are. When Output is set, Path only names it in the summary and
	// in errors ("-" reads as stdout).
	Path   string
	Output io.Writer
	// Force overwrites an existing file, emptied only once the
	// registration succeeded, so that a failed start leaves it as it was.
	Force bool
	// Format, Compression and ZstdLevel are the trace's
	// (pcapnl.WriterOptions); DefaultOptions takes the first two from
	// Path's name (pcapnl.FormatFor).
	Format      pcapnl.Format
	Compression pcapnl.Compression
	ZstdLevel   zstd.EncoderLevel
	// Flush is the longest a frame waits in memory before it is flushed to
	// the output: a killed recorder loses at most this much. Positive.
	Flush time.Duration
	// Buffer is the queue, in bytes of encoded frames, between the receive
	// loop and the goroutine that compresses and writes them; MinBuffer
	// to MaxBuffer.
	Buffer Size

	// Count stops the recording after this many frames from the peer;
	// 0 means no limit.
	Count uint64
	// Duration stops the recording after this long; 0 means no limit.
	Duration time.Duration
	// SnapLen is the receive buffer per datagram, imp2.HeaderLen to 65536
	// bytes; longer datagrams are truncated and counted.
	SnapLen int
	// Batch is the number of datagrams one recvmmsg may return, 1 to 1024.
	Batch int
	// Coalesce is the longest the receive loop waits after a read that
	// found fewer than Batch datagrams, so that the next read returns a
	// fuller batch: the cost of a read is paid per read, and behind a
	// sender slower than the recorder each read otherwise takes one or
	// two. It waits as long as the rate the last read saw takes to fill 90%
	// of a batch (the kernel's timer slack, 50µs, counted in), and only
	// when that wait would gather at least four (at the
	// default, from 20k/s); never longer than a quarter of the socket's
	// receive buffer holds at 1 KiB a datagram, at that rate or in a
	// burst at 2M/s, so a small RcvBuf waits less or not at all (below
	// 800K granted, a wait shorter than the timer slack; this includes
	// the stock rmem_max, 212992 granted twice, that a recorder without
	// CAP_NET_ADMIN gets: Summary.WaitNoRoom); half as long after each ENOBUFS. A Batch under 4 never
	// waits. The price: a frame's pcapng timestamp, the time it was read,
	// is later than its arrival by up to the wait and the kernel's timer
	// slack (50µs); the module's events carry their own (tstamp_ns). 0
	// reads again at once; at most MaxCoalesce.
	Coalesce time.Duration
	// StatsTimeout bounds the wait for the peer's counters at the end;
	// 0 does not ask for them (their gaps are then unexplained).
	StatsTimeout time.Duration

	// FileSize, FileInterval and Files rotate the trace into a set of
	// files, as tcpdump's -C, -G and -W (see rotate.go for the names, the
	// ring and when a file ends): a new file once the current one holds
	// FileSize bytes, or every FileInterval; with Files N, at most N files
	// at once, the oldest removed. Zero: off. Path is then a strftime
	// pattern.
	FileSize     Size
	FileInterval time.Duration
	Files        int

	// Filter selects the frames written (package filter, the language of
	// imp2-replay -filter); nil writes all. It is applied after the
	// sequence numbers and losses are accounted, so a frame filtered out
	// is counted (Summary.Filtered) and its number is no gap.
	Filter *filter.Filter
}

// Defaults.
const (
	DefaultRcvBuf       = 16 << 20 // the kernel doubles it: ~35k events of 960 bytes truesize (6.12 on; 768 on 6.1)
	DefaultBuffer       = 32 << 20
	MinBuffer           = 128 << 10
	DefaultSnapLen      = 256 // imp2 frames are 16-96 bytes
	DefaultBatch        = 128
	DefaultCoalesce     = 200 * time.Microsecond
	MaxCoalesce         = 10 * time.Millisecond
	DefaultStatsTimeout = time.Second
)

// MaxBuffer bounds Buffer, memory allocated when the recording starts: 1G
// holds some ten million encoded frames of about 100 bytes, far more than
// a disk stall needs, so a larger Buffer is a mistake, not a plan.
const MaxBuffer = 1 << 30

// DefaultOptions returns the settings imp2-record uses unless told
// otherwise, recording from the module into path, in the format and
// compression path's name asks for.
func DefaultOptions(path string) Options {
	o := Options{
		Family: imp2.DefaultFamily, Ack: true, RcvBuf: DefaultRcvBuf, Path: path,
		ZstdLevel: zstd.SpeedFastest, Flush: pcapnl.DefaultFlushInterval,
		Buffer: DefaultBuffer, SnapLen: DefaultSnapLen, Batch: DefaultBatch, Coalesce: DefaultCoalesce,
		StatsTimeout: DefaultStatsTimeout,
	}
	o.Format, o.Compression = pcapnl.FormatFor(path)
	return o
}

// OptionError is a setting Run refuses, named by its Options field.
type OptionError struct {
	Field  string // the Options field
	Value  any    // its value
	Reason string // what is wrong with it
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("record: Options.%s %v: %s", e.Field, e.Value, e.Reason)
}

// validate checks the settings; the first bad one is the error.
func (o *Options) validate() error {
	bad := func(field string, v any, reason string) error { return &OptionError{field, v, reason} }
	switch {
	case o.Family < 0 || o.Family > 31:
		return bad("Family", o.Family, "netlink units are 0-31")
	case o.Path == "" && o.Output == nil:
		return bad("Path", `""`, "the trace needs a path or an Output")
	case o.Duration < 0:
		return bad("Duration", o.Duration, "must not be negative")
	case o.Flush <= 0:
		return bad("Flush", o.Flush, "must be positive")
	case o.StatsTimeout < 0:
		return bad("StatsTimeout", o.StatsTimeout, "must not be negative")
	case o.SnapLen < imp2.HeaderLen || o.SnapLen > 1<<16:
		return bad("SnapLen", o.SnapLen, fmt.Sprintf("want %d to 65536 bytes", imp2.HeaderLen))
	case o.Batch < 1 || o.Batch > 1024:
		return bad("Batch", o.Batch, "want 1 to 1024")
	case o.Coalesce < 0 || o.Coalesce > MaxCoalesce:
		return bad("Coalesce", o.Coalesce, "want 0 to 10ms")
	case o.Buffer < MinBuffer || o.Buffer > MaxBuffer:
		return bad("Buffer", int64(o.Buffer), fmt.Sprintf("want %d (128K) to %d (1G) bytes: it is memory, allocated at the start", MinBuffer, MaxBuffer))
	case o.RcvBuf < 0:
		return bad("RcvBuf", int64(o.RcvBuf), "must not be negative")
	case o.RcvBuf > imp2.MaxRcvBuf:
		return bad("RcvBuf", int64(o.RcvBuf), fmt.Sprintf("want at most %d bytes (1G less one): the kernel doubles it into an int", imp2.MaxRcvBuf))
	}
	return o.validateRotation()
}

// Size is a byte count; as a flag.Value it accepts K, M, G and T suffixes
// (powers of 1024, optionally followed by B or iB: 16M, 16MB, 16MiB), in
// any case. It holds any count an int64 can; each field that feeds a
// narrower limit (a socket's int, a memory budget) has its own bound in
// its Options' validation, which names the field.
type Size int64

// String prints the size in the largest unit that divides it: 16M, 4G
// (cli.FormatSize).
func (s *Size) String() string { return cli.FormatSize(int64(*s)) }

// Set parses a size such as 8388608, 512K, 16M or 4G (cli.ParseSize,
// which every imp2 command's byte counts share).
func (s *Size) Set(v string) error {
	n, err := cli.ParseSize(v)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}
