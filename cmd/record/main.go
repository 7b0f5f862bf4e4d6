// imp2-record records every netlink frame an imp2 producer sends to it into
// a pcapng trace and says exactly what it lost and why. Package record does
// the work and documents the trace and the drop accounting; this command
// maps its flags onto record.Options and the outcome onto the exit status
// (record.ExitCode); package cli gives it the -h, -version and flag-error
// conventions of every imp2 command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/progress"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/record"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := parseFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	var err error
	if cfg.opts.Path == "-" {
		if terr := pcapnl.CheckNotTerminal(stdout); terr != nil {
			err = fmt.Errorf("-o -: %w", terr)
		}
		cfg.opts.Output = stdout
	}
	var r *record.Recorder
	if err == nil {
		r, err = record.New(cfg.opts)
	}
	if err != nil {
		fmt.Fprintf(stderr, "imp2-record: %v\n", flagError(&cfg.opts, err))
		return record.ExitUsage
	}
	if l := cfg.opts.Format.Loses(); l != "" && !cfg.quiet {
		fmt.Fprintf(stderr, "imp2-record: warning: -o %s: %s\n", cfg.opts.Path, l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer r.StopOnSignals(cancel)()
	var bar *progress.Bar // a terminal only
	if !cfg.quiet {
		bar = progress.New(stderr, false)
	}
	endProgress := bar.Follow(time.Second, r.Status())
	s, err := r.Run(ctx)
	endProgress()
	code = record.ExitCode(err)
	if s == nil {
		fmt.Fprintf(stderr, "imp2-record: %v\n", flagError(&cfg.opts, err))
		return code
	}
	s.ExitCode = code
	// The text on stderr unless -q, the JSON with -json on stdout, or on
	// stderr in place of the text when the trace is on stdout.
	jsonOut := stdout
	if cfg.opts.Path == "-" {
		jsonOut = stderr
	}
	if !cfg.quiet && !(cfg.json && cfg.opts.Path == "-") {
		fmt.Fprint(stderr, "imp2-record: ")
		s.WriteText(stderr)
	}
	if cfg.json {
		s.WriteJSON(jsonOut)
	}
	var me *record.MidwayError
	if errors.As(err, &me) {
		for _, e := range me.Errs {
			fmt.Fprintf(stderr, "imp2-record: %v\n", e)
		}
	}
	return code
}

// config is the parsed command line.
type config struct {
	opts  record.Options
	json  bool
	quiet bool
}

// command is imp2-record's command line. A plain argument is refused with
// a hint rather than taken as the output: a tcpdump user's plain argument
// is a capture filter, and writing over it would surprise.
func command() *cli.Command {
	c := cli.New("imp2-record", "imp2-record -o PATH [flags]", `
Record every frame an imp2 producer sends into a trace in the format PATH
names: .zst zstd, .gz gzip, anything else uncompressed; .pcap (before
.zst/.gz) classic pcap for tcpdump -r, without drop counts or statistics,
anything else pcapng. An existing file is overwritten only with -force.
Stops after -count frames, after -duration, or on SIGINT/SIGTERM;
unregisters (IMP2_CLOSE) on every way out. The output is always -o (tcpdump's
-w); a plain argument is refused. Sequence gaps are losses of this recording
(the peer's self_dropped, SO_MEMINFO, ENOBUFS; every gap from the module) or
inherited from the source (a replayed trace's own gaps); without the peer's
counters they are unexplained and counted as lost for the exit status.`, `
0 complete, nothing lost by this recording; 1 failed midway (trace valid up to
the last flush); 2 bad usage or an existing -o without -force; 3 complete but
frames were lost (or gaps unexplained); 4 could not start.`)
	c.Habits = map[string]string{
		"w": cli.Like("o", "tcpdump's -w"), "c": cli.Like("count", "tcpdump's -c"), "s": cli.Like("snaplen", "tcpdump's -s"),
		"B": cli.Like("rcvbuf", "tcpdump's -B, in bytes here"), "U": "imp2-record flushes at least every -flush (tcpdump's -U)",
		"i": "imp2-record records a netlink producer, not an interface (tcpdump's -i): -family and -peer choose it",
		"r": "imp2-record records live; imp2-replay -i TRACE reads a trace (tcpdump's -r)", "stats": statsHint,
		"n": "imp2-record resolves no names, so there is nothing to turn off (tcpdump's -n)",
	}
	return c
}

// statsHint answers tcpreplay's --stats, which is not -stats-timeout.
const statsHint = "imp2-record shows its progress on a terminal and the summary at the end (-json: as JSON); -stats-timeout is how long it waits for the peer's counters"

// flagOf names the flag of each record.Options field.
var flagOf = map[string]string{"Family": "family", "Path": "o", "Duration": "duration", "Flush": "flush",
	"StatsTimeout": "stats-timeout", "SnapLen": "snaplen", "Batch": "batch", "Coalesce": "coalesce", "Buffer": "buffer", "RcvBuf": "rcvbuf",
	"FileSize": "C", "FileInterval": "G", "Files": "W"}

// flagHint names the flags a field's reason is about, where it names none.
var flagHint = map[string]string{"Files": " (-C SIZE or -G DURATION, as tcpdump's -W needs)"}

// flagError says what is wrong with the command line, or with the output,
// in terms of the flags.
func flagError(o *record.Options, err error) error {
	var oe *record.OptionError
	var ee *record.ExistsError
	switch {
	case errors.As(err, &oe):
		return fmt.Errorf("-%s %v: %s%s", flagOf[oe.Field], oe.Value, oe.Reason, flagHint[oe.Field])
	case errors.As(err, &ee) && ee.Path != o.Path:
		return fmt.Errorf("-o %s: %s exists (an earlier recording of this set?); add -force to overwrite it", o.Path, ee.Path)
	case errors.Is(err, record.ErrExists):
		return fmt.Errorf("-o %s: the file exists; add -force to overwrite it", o.Path)
	}
	return err
}

// parseFlags returns the config; ok false: exit with code, the message
// written.
func parseFlags(args []string, stdout, stderr io.Writer) (*config, int, bool) {
	c := &config{opts: record.DefaultOptions("")}
	o := &c.opts
	cmd := command()
	fs := cmd.Flags
	cli.Uint32Var(fs, &o.Peer, "peer", 0, "port id the control messages go to: 0 is the kernel module, any other a user-space producer")
	compress := fs.String("compress", "auto", "auto (by PATH: .zst zstd, .gz gzip, otherwise none), zstd, gzip or none")
	level := fs.String("zstd-level", "fastest", "zstd level: fastest, default (about zstd -3), better or best")
	fs.IntVar(&o.Family, "family", imp2.DefaultFamily, "netlink unit: 31 for the module, 2 (NETLINK_USERSOCK) for a user-space producer")
	fs.StringVar(&o.Path, "o", "", "output `PATH` (.pcapng.zst), or - for stdout (required)")
	fs.BoolVar(&o.Force, "force", false, "overwrite PATH if it is an existing file (refused without it, exit status 2: a trace may be the only copy of an incident)")
	fs.Var(&o.RcvBuf, "rcvbuf", "socket receive buffer in `bytes` (K/M/G/T suffixes), forced past rmem_max with CAP_NET_ADMIN; the kernel doubles it; 0 keeps the system default")
	fs.BoolVar(&o.NoENOBUFS, "no-enobufs", false, "set NETLINK_NO_ENOBUFS: overruns drop silently (still seen as sequence gaps and SO_MEMINFO drops)")
	ack := fs.Bool("ack", false, "wait for the peer to acknowledge the registration (default: on for -peer 0, the module; off for user-space peers; the original module never acknowledges)")
	fs.Uint64Var(&o.Count, "count", 0, "stop after this many frames from the peer (0: no limit)")
	cli.DurationVar(fs, &o.Duration, "duration", 0, "stop after this long, or this many seconds (0: no limit)")
	cli.DurationVar(fs, &o.Flush, "flush", o.Flush, "flush the trace at least this often; a killed recorder loses at most this much")
	fs.Var(&o.Buffer, "buffer", "user-space buffer between the receive loop, which encodes the frames, and the goroutine that compresses and writes them, in `bytes` (K/M/G/T suffixes)")
	fs.IntVar(&o.SnapLen, "snaplen", o.SnapLen, "receive buffer per datagram in bytes; longer datagrams are truncated and counted")
	fs.IntVar(&o.Batch, "batch", o.Batch, "datagrams per recvmmsg call")
	cli.DurationVar(fs, &o.Coalesce, "coalesce", o.Coalesce, "after a read of fewer than -batch frames while they come at 4 or more per interval (20k/s at 200µs), wait up to this long (200us, 1ms; a bare number is seconds) so that the next read takes more: less CPU per frame, pcapng timestamps (read times) up to this much (and 50µs of timer slack) late; shorter with a small -rcvbuf, none with the stock rmem_max (the summary says so); 0: read again at once; at most 10ms")
	cli.DurationVar(fs, &o.StatsTimeout, "stats-timeout", o.StatsTimeout, "how long to wait for the peer's counters at the end (0: do not ask)")
	fs.Var(&o.FileSize, "C", "rotate: a new file once the current one holds this many `bytes` (K/M/G/T suffixes), as tcpdump -C; names get a number before the extension (t.000001.pcapng.zst)")
	cli.DurationVar(fs, &o.FileInterval, "G", 0, "rotate: a new file every interval, or this many seconds, on multiples of it (as tcpdump -G); -o is then a strftime pattern (%Y%m%d-%H%M%S)")
	fs.IntVar(&o.Files, "W", 0, "with -C or -G: keep at most this many files, removing the oldest (a ring, as tcpdump -W)")
	filterExpr := fs.String("filter", "", "write only the frames that match `EXPR` (imp2-replay -filter's language); the others are counted, never as lost")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON on stdout, and the text summary on stderr as well unless -q (with -o -: the JSON on stderr, in place of the text)")
	fs.BoolVar(&c.quiet, "q", false, "no progress line and no text summary; errors are still printed")
	pos, code, ok := cmd.Parse(args, stdout, stderr)
	if !ok {
		return nil, code, false
	}
	o.Ack = o.Peer == 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "ack" {
			o.Ack = *ack
		}
	})
	var zok bool
	zok, o.ZstdLevel = zstd.EncoderLevelFromString(*level)
	compression, cerr := pcapnl.ParseCompression(*compress, o.Path)
	o.Compression = compression
	var ferr error
	o.Filter, ferr = filter.Parse(*filterExpr)
	switch {
	case len(pos) > 0:
		return nil, cmd.Fail(stderr, "unexpected argument %q: name the output with -o PATH (tcpdump's -w); a capture filter goes in -filter EXPR", pos[0]), false
	case o.Path == "":
		return nil, cmd.Fail(stderr, "-o is required: a .pcapng.zst path, or - for stdout"), false
	case !zok:
		return nil, cmd.Fail(stderr, "-zstd-level %q: want fastest, default, better or best", *level), false
	case cerr != nil:
		return nil, cmd.Fail(stderr, "-compress: %v", cerr), false
	case ferr != nil:
		return nil, cmd.Fail(stderr, "-filter: %v", ferr), false
	}
	o.Format, _ = pcapnl.FormatFor(o.Path)
	return c, record.ExitOK, true
}
