// Command imp2-replay plays a recorded trace back (package replay, and
// replay/icmp for -to icmp). It parses the flags into the engines'
// options, runs the replay and exits with the code the replay reports;
// -h prints what it does, the flags, the outputs, the filter syntax and
// the exit codes (package cli's conventions), and the README says more.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/replayvm"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/record"
	"github.com/imp2/imp2/replay"
	"github.com/imp2/imp2/replay/icmp"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// cmdline is the command line: the engines' options, bound to flags, and what
// only the command decides (which output, where the summary goes, -vm).
type cmdline struct {
	o            replay.Options
	nl           replay.NetlinkOptions
	ic           icmp.Options
	to, out, zip string
	vm           replayvm.Config
	quiet        bool
	force        bool // -o may overwrite an existing regular file
	stdout       bool // a file output that goes to stdout: -o -, or -o naming the file stdout is
	cmd          *cli.Command
}

// command is imp2-replay's command line: a plain argument is an input,
// as with -i (tcpreplay and tcpdump -r users name the trace so).
func command() *cli.Command {
	c := cli.New("imp2-replay", "imp2-replay [-to netlink|icmp|text|json|pcapng] [flags] TRACE...", `
Play a recorded trace back: into imp2 consumers over a real netlink socket (it
acts as the kernel side), through the real module by regenerating the ICMP
packets behind each event (-to icmp), or as text, JSON or a new pcapng trace,
with timing from the recording, a speed factor, a fixed rate or top speed. The
inputs are the plain arguments and every -i, merged by timestamp.`, exitCodesHelp)
	c.Notes = outputsHelp + "\n" + filter.Syntax
	c.Habits = map[string]string{
		"x": cli.Like("speed", "tcpreplay's -x"), "multiplier": cli.Like("speed", "tcpreplay's --multiplier"),
		"p": cli.Like("pps", "tcpreplay's -p"), "t": cli.Like("topspeed", "tcpreplay's -t"), "l": cli.Like("loop", "tcpreplay's -l"),
		"L": cli.Like("limit", "tcpreplay's -L"), "c": cli.Like("limit", "tcpdump's -c"), "loopdelay-ms": cli.Like("loop-delay", "tcpreplay's --loopdelay-ms, a duration here"),
		"r": cli.Like("i", "tcpdump's -r; or name the trace as a plain argument"), "w": cli.Like("o", "tcpdump's -w, with -to pcapng"),
		"M": "no byte-rate pacing: -pps sets frames per second (tcpreplay's -M)", "mbps": "no byte-rate pacing: -pps sets frames per second (tcpreplay's --mbps)",
		"K": preload + " (tcpreplay's -K)", "preload-pcap": preload + " (tcpreplay's --preload-pcap)",
		"intf1": "imp2-replay sends to netlink consumers (-to netlink) or through the module (-to icmp), not out of an interface (tcpreplay's --intf1)",
	}
	return c
}

// preload is the hint for tcpreplay's -K: what imp2-replay does instead.
const preload = "imp2-replay reads -readahead bytes before the clock starts and keeps the trace in memory for -loop"

// parseFlags returns the command line; ok false: exit with code, the
// message written.
func parseFlags(args []string, stdout, stderr io.Writer) (*cmdline, int, bool) {
	c := &cmdline{o: replay.Options{Timing: replay.DefaultTiming()}}
	t, nl, ic := &c.o.Timing, &c.nl, &c.ic
	cmd := command()
	fs := cmd.Flags
	fs.Func("i", "input `TRACE` (pcapng or pcap, zstd/gzip/plain; - for stdin), as a plain argument is; a directory or a glob is a rotated set, read in the order written; several are merged by timestamp",
		func(v string) error { c.o.Inputs = append(c.o.Inputs, v); return nil })
	fs.StringVar(&c.to, "to", "netlink", "output: netlink, icmp, text, json or pcapng")
	fs.StringVar(&c.out, "o", "-", "output `PATH` for text, json and pcapng; - for stdout; an existing file is refused without -force (a FIFO or a device is not)")
	fs.BoolVar(&c.force, "force", false, "overwrite an existing -o file")
	fs.Func("filter", "replay only the frames that match `EXPR` (the syntax is below)", func(v string) (err error) { c.o.Filter, err = filter.Parse(v); return err })
	cli.IntVar(fs, &nl.Family, "family", imp2.UserSockFamily, 0, maxFamily, "netlink: family (unit) to serve on; 2 = NETLINK_USERSOCK")
	cli.Uint32Var(fs, &nl.Bind, "bind", 0, "netlink: port id to bind, the one consumers register with (0: kernel picks, printed)")
	cli.Uint32Var(fs, &nl.Dest, "dest", 0, "netlink: also send to this fixed port id, without waiting for a registration")
	fs.StringVar(&nl.NetNS, "netns", "", "netlink: network namespace file (/run/netns/NAME, /proc/PID/ns/net)")
	cli.DurationVar(fs, &nl.Wait, "wait", 10*time.Second, "netlink: how long to wait for -min-consumers registrations (0: forever)")
	cli.IntVar(fs, &nl.MinConsumers, "min-consumers", 1, 0, cli.NoMax, "netlink: registered consumers to wait for before starting, counting only those whose socket is still open (with -dest: 0 unless given)")
	cli.IntVar(fs, &nl.MaxConsumers, "max-consumers", imp2.DefaultMaxConsumers, 1, cli.NoMax, "netlink: most consumers registered at once (the module's max_consumers); one more is refused with ENOSPC")
	fs.BoolVar(&nl.AllowUnprivileged, "allow-unprivileged", false, "netlink: let consumers without CAP_NET_ADMIN register (the module's allow_unprivileged=1); by default they are refused with EPERM")
	cli.DurationVar(fs, &nl.Linger, "linger", 2*time.Second, "netlink: after the last frame, keep answering (IMP2_GET_STATS, IMP2_CLOSE) until every consumer has unregistered or this passes")
	fs.Float64Var(&t.Speed, "speed", 1, "replay the recorded timing this many times faster")
	fs.Float64Var(&t.PPS, "pps", 0, "replay at this many frames per second, ignoring recorded gaps")
	fs.BoolVar(&t.TopSpeed, "topspeed", false, "replay as fast as possible")
	fs.BoolVar(&t.Realtime, "realtime", false, "text, json, pcapng: follow the clock (default: write at once, re-timed)")
	cli.IntVar(fs, &t.Loops, "loop", 1, 0, cli.NoMax, "replay the trace N times (0: until -limit, -duration or a signal); N≠1 keeps the trace in memory")
	cli.DurationVar(fs, &t.LoopDelay, "loop-delay", 0, "pause between loops (after the last frame of one, before the first of the next)")
	cli.IntVar(fs, &t.Limit, "limit", 0, 0, cli.NoMax, "stop after N frames (0: no limit)")
	cli.DurationVar(fs, &t.Duration, "duration", 0, "stop after this much replay time (0: no limit)")
	cli.IntVar(fs, &t.Batch, "batch", t.Batch, 1, 1024, "most frames per send (sendmmsg); paced replays batch only frames already due")
	cli.DurationVar(fs, &t.Spin, "spin", t.Spin, "spin instead of sleeping for the last part of each wait")
	cli.IntVar(fs, &t.RT, "rt", 0, 0, 99, "paced replays: run the sending thread SCHED_FIFO at this priority (1-99, needs CAP_SYS_NICE)")
	c.o.ReadAhead, c.ic.VerifyRcvBuf = replay.DefaultReadAhead, 16<<20
	fs.Var((*record.Size)(&c.o.ReadAhead), "readahead", "`bytes` (K/M/G/T suffixes) of decoded trace held ahead of the sender: read before the clock starts, and the bound on that memory whatever the frame sizes (a larger frame goes through alone)")
	cli.DurationVar(fs, &c.o.Progress, "stats", 0, "print progress every interval, e.g. 5 (seconds; 0: only the summary)")
	fs.BoolVar(&c.o.ProgressJSON, "json", false, "summary and progress as JSON")
	fs.BoolVar(&c.quiet, "q", false, "no text summary (as imp2-record -q); errors, warnings and -json's summary are still printed")
	fs.StringVar(&c.zip, "compress", "auto", "pcapng: auto (by -o: .zst zstd, .gz gzip, otherwise none; .pcap names classic pcap), zstd, gzip or none")
	fs.StringVar(&ic.DestNetNS, "netns-dst", "", "icmp: send into this existing namespace (a name in /run/netns, or a file such as /proc/1/ns/net for the root one) instead of a fresh one; needs nft")
	fs.BoolVar(&ic.Verify, "verify", false, "icmp: record the module's events as a second consumer and compare them with the replayed ones")
	fs.Var((*record.Size)(&ic.VerifyRcvBuf), "verify-rcvbuf", "icmp: receive buffer of the verifying consumer in `bytes` (K/M/G/T suffixes), forced past rmem_max as root")
	cli.DurationVar(fs, &ic.VerifyWait, "verify-wait", time.Second, "icmp: after the last packet, wait this long without an event for the missing ones")
	cli.IntVar(fs, &ic.VerifyTolerate, "verify-tolerate", 0, 0, cli.NoMax, "icmp: missing + extra events allowed before the exit status is 5")
	vm := fs.Bool("vm", false, "icmp: run inside the qemu harness with the module built from this checkout")
	fs.StringVar(&c.vm.Consumer, "vm-consumer", "", "icmp -vm: a static host program (and its arguments) started as a consumer in the destination namespace inside the VM")
	fs.StringVar(&c.vm.ConsumerOut, "vm-consumer-out", "", "icmp -vm: write the -vm-consumer's output to this file")
	cli.DurationVar(fs, &c.vm.Timeout, "vm-timeout", 10*time.Minute, "icmp -vm: bound on the whole VM run")
	pos, code, ok := cmd.Parse(args, stdout, stderr)
	if !ok {
		return nil, code, false
	}
	c.o.Inputs = append(c.o.Inputs, pos...)
	c.cmd = cmd
	if *vm {
		c.vm.Args = cmd.FlagArgs // the inputs are copied into the VM's share
	}
	return c, replay.ExitOK, true
}

const outputsHelp = `Outputs (-to):
  netlink  the imp2 kernel side on a netlink socket: consumers register with
           IMP2_U_PID (each gets every frame, as from the module, with its
           CAP_NET_ADMIN and max_consumers rules) or -dest names a fixed
           port. Only kernel→user frames are sent, byte for byte, with
           MSG_DONTWAIT (a full queue loses the frame: EAGAIN); the others
           are skipped and counted.
  icmp     the ICMP packet behind each recorded event, sent across a veth
           into a fresh namespace or -netns-dst, where the module's hook and
           the consumers are.
  text     one line per frame: time dir family type len seq pid [src dest ...]
  json     the same fields, one JSON object per line
  pcapng   a new trace: filtered, cut, re-timed, looped or merged (several
           inputs), in the format -o names: .zst zstd, .gz gzip, otherwise
           uncompressed; .pcap classic pcap (tcpdump -r; no drop counts),
           otherwise pcapng. Refused on a terminal.
Timing: as recorded (default), -speed, -pps or -topspeed. File outputs are
written at once with re-timed timestamps unless -realtime. The summary goes to
stdout, or to stderr when the data does (-o -, or -o naming the file stdout is,
such as /dev/stdout).
`

const exitCodesHelp = `0 done; 1 runtime or output error; 2 bad usage (or an output that is an input);
3 bad or truncated input (complete frames were replayed); 4 no consumer within
-wait, or nothing delivered to -dest or the registered consumers; 5 -verify found
missing or extra events; 130 interrupted.`

// check refuses flag values and combinations that make no sense
// (cli.Rule), sets the options that depend on others and checks what the
// engines would refuse, before anything starts: all of it is a usage
// error.
func (c *cmdline) check(stdin io.Reader, stdout io.Writer) error {
	icmpTo, file := c.to == "icmp", c.to == "text" || c.to == "json" || c.to == "pcapng"
	t, ic := &c.o.Timing, &c.ic
	if err := c.cmd.Check(
		cli.Require(icmpTo || c.to == "netlink" || file, fmt.Sprintf("-to %q: want netlink, icmp, text, json or pcapng%s", c.to, map[string]string{"pcap": " (classic pcap: -to pcapng -o NAME.pcap)"}[c.to]), ""),
		cli.Require(c.cmd.AtMostOne("speed", "pps", "topspeed"), "-speed, -pps and -topspeed are exclusive", ""),
		cli.Require(file, "is for file outputs; -to "+c.to+" always follows the clock", "realtime"),
		cli.Require(icmpTo, "is for -to icmp", "netns-dst verify verify-rcvbuf verify-wait verify-tolerate vm vm-consumer vm-consumer-out vm-timeout"),
		cli.Require(!icmpTo, "is not for -to icmp", "netns bind dest linger compress"),
		// Flags that would do nothing with this output are refused, not
		// ignored: -o with the default netlink output waited for a
		// consumer and wrote nothing.
		cli.Require(file, "is for -to text, json or pcapng (-to "+c.to+" writes no file)", "o force"),
		cli.Require(!file, "is for -to netlink and icmp, not for a file output (-to "+c.to+")", "family wait min-consumers"),
		cli.Require(!file, "is for -to netlink, not for a file output (-to "+c.to+")", "bind dest linger netns max-consumers allow-unprivileged"),
		cli.Require(c.ic.Verify, "needs -verify", "verify-rcvbuf verify-wait verify-tolerate"),
		cli.Require(c.vm.Args != nil, "needs -vm", "vm-consumer vm-consumer-out vm-timeout"),
		cli.Require(c.vm.Consumer != "", "needs -vm-consumer", "vm-consumer-out"),
		cli.Require(c.vm.Args == nil, "is not for -vm, which makes its own destination namespace", "netns-dst"),
		cli.Require(c.vm.Timeout > 0, "-vm-timeout must be positive", ""),
		// The engines' ranges, named by flag rather than by field.
		cli.Require(!math.IsNaN(t.Speed) && !math.IsInf(t.Speed, 0), "must be a finite number", "speed"),
		cli.Require(!math.IsNaN(t.PPS) && !math.IsInf(t.PPS, 0), "must be a finite number", "pps"),
		cli.Require(t.Speed > 0, "must be positive", "speed"),
		cli.Require(t.PPS >= 0, "cannot be negative", "pps"),
		// Slower, a one-second gap (one frame) is due decades later, past
		// what a nanosecond timestamp holds (2262) for a trace of any length.
		cli.Require(t.Speed >= minSpeed, fmt.Sprintf("must be at least %g: slower, a second of the recording lasts decades", minSpeed), "speed"),
		cli.Require(t.PPS == 0 || t.PPS >= minPPS, fmt.Sprintf("must be at least %g (one frame a %v)", minPPS, time.Duration(1e9/minPPS)), "pps"), cli.Require(ic.VerifyWait > 0, "must be positive", "verify-wait"),
		cli.Require(ic.VerifyRcvBuf <= imp2.MaxRcvBuf, fmt.Sprintf("must be at most %d bytes: the kernel doubles it into an int", imp2.MaxRcvBuf), "verify-rcvbuf"),
	); err != nil {
		return err
	}
	var err error
	switch c.to {
	case "netlink":
		if c.nl.Dest != 0 && !c.cmd.IsSet("min-consumers") {
			c.nl.MinConsumers = 0 // -dest alone needs no registration
		}
		err = c.nl.Validate()
	case "icmp":
		c.ic.TopSpeed, c.ic.Batch, c.ic.Wait = c.o.Timing.TopSpeed, c.o.Timing.Batch, c.nl.Wait
		if c.cmd.IsSet("min-consumers") { // packets can be sent without any consumer
			c.ic.MinConsumers = c.nl.MinConsumers
		}
		if c.cmd.IsSet("family") {
			c.ic.Family = c.nl.Family
		}
		err = c.ic.Validate()
	default:
		c.stdout = replay.WritesTo(c.out, stdout) // -o /dev/stdout is -o -, its name the format's
		err = replay.CheckNotInput(c.o.Inputs, stdin, c.out, stdout)
		if st, serr := os.Stat(c.out); err == nil && !c.stdout && !c.force && serr == nil && st.Mode().IsRegular() {
			err = fmt.Errorf("-o %s: the file exists; add -force to overwrite it", c.out) // as imp2-record
		}
		if _, zerr := pcapnl.ParseCompression(c.zip, c.out); zerr != nil {
			err = errors.Join(err, fmt.Errorf("-compress: %w", zerr))
		}
		if terr := pcapnl.CheckNotTerminal(stdout); c.to == "pcapng" && c.stdout && terr != nil {
			err = errors.Join(err, fmt.Errorf("-o %s: %w", c.out, terr))
		}
	}
	return errors.Join(err, c.o.Validate())
}

// maxFamily is the largest netlink family (unit): the kernel has
// MAX_LINKS (32) of them.
const maxFamily = 31

// The slowest -speed and -pps: below them a short trace's schedule
// already leaves what an int64 of nanoseconds holds. A long trace may
// still do so at a slow rate; the replay stops there (replay.ErrSchedule).
const (
	minSpeed = 1e-9
	minPPS   = 1e-6
)

// flagNames names the engine's timing options as flags, in the replay's
// problems (the engine names its fields).
var flagNames = strings.NewReplacer("Timing.Speed", "-speed", "Timing.PPS", "-pps", "Timing.LoopDelay", "-loop-delay")

// run is main without os.Exit, for tests.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "imp2-replay: "+format+"\n", args...) }
	c, code, ok := parseFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	if err := c.check(stdin, stdout); err != nil {
		logf("%v", err)
		return replay.ExitUsage
	}
	if c.vm.Args != nil {
		c.vm.Inputs, c.vm.Stdin, c.vm.Stdout, c.vm.Stderr, c.vm.Log = c.o.Inputs, stdin, stdout, stderr, logf
		c.vm.MinConsumersSet = c.cmd.IsSet("min-consumers")
		return replayvm.Run(c.vm)
	}
	sumW := stdout
	if c.stdout {
		sumW = stderr // the data goes to stdout
	}
	c.o.Stdin, c.o.ProgressTo = stdin, sumW
	var err error
	if c.o.Output, err = c.output(stdout, c.infoLog(stderr)); err != nil {
		logf("%v", err)
		return replay.ExitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := replay.Run(ctx, c.o)
	if err != nil {
		logf("%v", err)
		return replay.Code(err)
	}
	if !c.quiet || c.o.ProgressJSON {
		s.Write(sumW, c.o.ProgressJSON)
	}
	if f, _ := pcapnl.FormatFor(c.out); c.to == "pcapng" && f.Loses() != "" { // once the file is made
		logf("warning: -o %s: %s", c.out, f.Loses())
	}
	for _, m := range s.Problems {
		logf("%s", flagNames.Replace(m))
	}
	return s.ExitCode
}

// infoLog returns the log of the outputs' notes (where the replay
// listens, what it waits for, warnings) on w: plain "imp2-replay: ..."
// lines, none but warnings under -q, and with -json one object a line,
// {"type":"log","message":...}, as every other line -json writes.
func (c *cmdline) infoLog(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if c.quiet && !strings.HasPrefix(msg, "warning: ") {
			return
		}
		if c.o.ProgressJSON {
			b, _ := json.Marshal(struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			}{"log", msg})
			fmt.Fprintf(w, "%s\n", b)
			return
		}
		fmt.Fprintf(w, "imp2-replay: %s\n", msg)
	}
}

// output makes the -to output: its options from the flags, and the -o file.
func (c *cmdline) output(stdout io.Writer, logf func(string, ...any)) (replay.Output, error) {
	switch c.to {
	case "icmp":
		c.ic.Log = logf
		return icmp.New(c.ic)
	case "netlink":
		c.nl.Log = logf
		return replay.NewNetlink(c.nl)
	}
	zip, _ := pcapnl.ParseCompression(c.zip, c.out) // checked by check
	return replay.NewFile(c.to, c.out, stdout, zip, c.o.Timing.Realtime, "imp2-replay")
}
