package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// config is the parsed command line.
type config struct {
	family       int
	peer         uint32
	out          string
	force        bool
	compression  pcapnl.Compression
	zstdLevel    zstd.EncoderLevel
	rcvbuf       int
	noENOBUFS    bool
	ack          bool
	count        uint64
	duration     time.Duration
	flush        time.Duration
	buffer       int
	snaplen      int
	batch        int
	statsTimeout time.Duration
	json         bool
	quiet        bool
}

// Defaults.
const (
	defaultRcvBuf  = 16 << 20 // the kernel doubles it: ~40k events of 832 bytes truesize
	defaultBuffer  = 32 << 20 // encoded frames queued for the compressing goroutine
	minBuffer      = 128 << 10
	defaultSnapLen = 256 // receive buffer per datagram; imp2 frames are 36-96 bytes
	defaultBatch   = 128 // datagrams per recvmmsg

	defaultZstdLevel = "fastest"
)

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// size is a byte count flag accepting K, M and G suffixes (powers of 1024).
type size int

func (s *size) String() string {
	switch n := int(*s); {
	case n != 0 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "M"
	case n != 0 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "K"
	default:
		return strconv.Itoa(n)
	}
}

func (s *size) Set(v string) error {
	mult := 1
	num := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(v), "B"), "I")
	switch {
	case strings.HasSuffix(num, "K"):
		mult, num = 1<<10, strings.TrimSuffix(num, "K")
	case strings.HasSuffix(num, "M"):
		mult, num = 1<<20, strings.TrimSuffix(num, "M")
	case strings.HasSuffix(num, "G"):
		mult, num = 1<<30, strings.TrimSuffix(num, "G")
	}
	n, err := strconv.ParseUint(num, 10, 31)
	if err != nil || int64(n)*int64(mult) > 1<<31-1 {
		return errors.New("want a size in bytes below 2G, such as 8388608, 512K or 16M")
	}
	*s = size(int(n) * mult)
	return nil
}

const usageText = `usage: imp2-record -o PATH [flags]

Record every frame an imp2 producer sends into a pcapng trace (zstd-compressed
unless PATH ends in .pcapng). An existing file is overwritten only with
-force. Stops after -count frames, after -duration, or on SIGINT/SIGTERM;
unregisters (IMP2_CLOSE) on every way out.

Sequence gaps are losses of this recording (the peer's self_dropped,
SO_MEMINFO, ENOBUFS; every gap from the module) or inherited from the source
(a replayed trace's own gaps); without the peer's counters they are
unexplained and counted as lost for the exit status.

Exit status: 0 complete, nothing lost by this recording; 1 failed midway
(trace valid up to the last flush); 2 bad flags or an existing -o without
-force; 3 complete but frames were lost (or gaps unexplained); 4 could not
start.

flags:
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("imp2-record", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		peer     uint64
		compress string
		level    string
		rcvbuf   = size(defaultRcvBuf)
		buffer   = size(defaultBuffer)
	)
	fs.IntVar(&c.family, "family", imp2.DefaultFamily, "netlink unit: 31 for the module, 2 (NETLINK_USERSOCK) for a user-space producer")
	fs.Uint64Var(&peer, "peer", 0, "port id the control messages go to: 0 is the kernel module, any other a user-space producer")
	fs.StringVar(&c.out, "o", "", "output `PATH` (.pcapng.zst), or - for stdout (required)")
	fs.BoolVar(&c.force, "force", false, "overwrite PATH if it is an existing file (refused without it, exit status 2: a trace may be the only copy of an incident)")
	fs.StringVar(&compress, "compress", "auto", "zstd, none, or auto: none when PATH ends in .pcapng, zstd otherwise")
	fs.StringVar(&level, "zstd-level", defaultZstdLevel, "zstd level: fastest, default (about zstd -3), better or best")
	fs.Var(&rcvbuf, "rcvbuf", "socket receive buffer in bytes (K/M/G suffixes), forced past rmem_max with CAP_NET_ADMIN; the kernel doubles it; 0 keeps the system default")
	fs.BoolVar(&c.noENOBUFS, "no-enobufs", false, "set NETLINK_NO_ENOBUFS: overruns drop silently (still seen as sequence gaps and SO_MEMINFO drops)")
	ack := fs.Bool("ack", false, "wait for the peer to acknowledge the registration (default: on for -peer 0, the module; off for user-space peers; the original module never acknowledges)")
	fs.Uint64Var(&c.count, "count", 0, "stop after this many frames from the peer (0: no limit)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: no limit)")
	fs.DurationVar(&c.flush, "flush", pcapnl.DefaultFlushInterval, "flush the trace at least this often; a killed recorder loses at most this much")
	fs.Var(&buffer, "buffer", "user-space buffer between the receive loop, which encodes the frames, and the goroutine that compresses and writes them, in bytes (K/M/G suffixes)")
	fs.IntVar(&c.snaplen, "snaplen", defaultSnapLen, "receive buffer per datagram in bytes; longer datagrams are truncated and counted")
	fs.IntVar(&c.batch, "batch", defaultBatch, "datagrams per recvmmsg call")
	fs.DurationVar(&c.statsTimeout, "stats-timeout", time.Second, "how long to wait for the peer's counters at the end (0: do not ask)")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON on stdout (on stderr, instead of the text summary, with -o -)")
	fs.BoolVar(&c.quiet, "q", false, "no progress line and no text summary; errors are still printed")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err // fs.Usage has run
		}
		return nil, &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q: imp2-record takes flags only (see -h)", fs.Arg(0))
	}
	c.ack = peer == 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "ack" {
			c.ack = *ack
		}
	})
	switch {
	case c.family < 0 || c.family > 31:
		return nil, usagef("-family %d: netlink units are 0-31", c.family)
	case peer > 1<<32-1:
		return nil, usagef("-peer %d: port ids are 32-bit", peer)
	case c.out == "":
		return nil, usagef("-o is required: a .pcapng.zst path, or - for stdout")
	case c.duration < 0:
		return nil, usagef("-duration %v: must not be negative", c.duration)
	case c.flush <= 0:
		return nil, usagef("-flush %v: must be positive", c.flush)
	case c.statsTimeout < 0:
		return nil, usagef("-stats-timeout %v: must not be negative", c.statsTimeout)
	case c.snaplen < imp2.HeaderLen || c.snaplen > 1<<16:
		return nil, usagef("-snaplen %d: want %d to 65536 bytes", c.snaplen, imp2.HeaderLen)
	case c.batch < 1 || c.batch > 1024:
		return nil, usagef("-batch %d: want 1 to 1024", c.batch)
	}
	c.peer = uint32(peer)
	c.rcvbuf = int(rcvbuf)
	c.buffer = int(buffer)
	if c.buffer < minBuffer {
		return nil, usagef("-buffer %d: want at least %d bytes", c.buffer, minBuffer)
	}
	ok, lvl := zstd.EncoderLevelFromString(level)
	if !ok {
		return nil, usagef("-zstd-level %q: want fastest, default, better or best", level)
	}
	c.zstdLevel = lvl
	switch compress {
	case "auto":
		c.compression = pcapnl.Zstd
		if strings.HasSuffix(c.out, ".pcapng") || strings.HasSuffix(c.out, ".pcap") {
			c.compression = pcapnl.None
		}
	case "zstd":
		c.compression = pcapnl.Zstd
	case "none":
		c.compression = pcapnl.None
	default:
		return nil, usagef("-compress %q: want zstd, none or auto", compress)
	}
	return c, nil
}
