// Command imp2-replay plays a recorded trace back: into imp2 consumers over
// a real netlink socket (it acts as the kernel side), through the real
// module by regenerating the ICMP packets behind each event (-to icmp), or
// as text, JSON or a new pcapng trace, with timing from the recording, a
// speed factor, a fixed rate or top speed.
//
// Usage:
//
//	imp2-replay -i TRACE [-to netlink|icmp|text|json|pcapng] [options]
//
// Exit codes:
//
//	0  replay complete
//	1  runtime or output error (cannot open the netlink socket, write failed)
//	2  usage error (bad flag or -filter, an output that is an input)
//	3  input error: unreadable, malformed or truncated trace; every complete
//	   frame before the problem has been replayed and the summary printed
//	4  no consumer: none registered within -wait (-to netlink, -to icmp), or
//	   nothing was delivered (-to netlink: frames were sent to -dest or to
//	   -min-consumers registered consumers and none took one); the summary
//	   says why for each
//	5  -verify: the module's events differ from the replayed ones (missing
//	   or extra events beyond -verify-tolerate)
//	130 interrupted (SIGINT/SIGTERM); the summary is printed
//
// See -help for the options and the filter syntax, and the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/pcapnl"
)

const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInput       = 3
	exitNoConsumer  = 4
	exitVerify      = 5
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type config struct {
	in                  inputList
	to, out, filter     string
	family              int
	bind, dest          uint
	netns               string
	wait                time.Duration
	minConsumers        int
	maxConsumers        int
	allowUnprivileged   bool
	linger              time.Duration
	speed, pps          float64
	topspeed, realtime  bool
	loops               int
	loopDelay, duration time.Duration
	limit               int64
	batch               int
	spin                time.Duration
	rt                  int
	readahead           int
	stats               time.Duration
	json                bool
	compress            string
	flagsSet            map[string]bool

	// -to icmp
	netnsDst      string
	verify        bool
	verifyRcvBuf  int
	verifyWait    time.Duration
	tolerate      int64
	vm            bool
	vmConsumer    string
	vmConsumerOut string
	vmTimeout     time.Duration
	args          []string // as given, for -vm
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("imp2-replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&c.in, "i", "input trace (pcapng or pcap, zstd/gzip/plain); - for stdin; several -i are merged by timestamp")
	fs.StringVar(&c.to, "to", "netlink", "output: netlink, icmp, text, json or pcapng")
	fs.StringVar(&c.out, "o", "-", "output file for text, json and pcapng; - for stdout")
	fs.StringVar(&c.filter, "filter", "", "replay only matching frames (see below)")
	fs.IntVar(&c.family, "family", imp2.UserSockFamily, "netlink: family (unit) to serve on; 2 = NETLINK_USERSOCK")
	fs.UintVar(&c.bind, "bind", 0, "netlink: port id to bind, the one consumers register with (0: kernel picks, printed)")
	fs.UintVar(&c.dest, "dest", 0, "netlink: also send to this fixed port id, without waiting for a registration")
	fs.StringVar(&c.netns, "netns", "", "netlink: network namespace file (/run/netns/NAME, /proc/PID/ns/net)")
	fs.DurationVar(&c.wait, "wait", 10*time.Second, "netlink: how long to wait for -min-consumers registrations (0: forever)")
	fs.IntVar(&c.minConsumers, "min-consumers", 1, "netlink: registered consumers to wait for before starting, counting only those whose socket is still open (with -dest: 0 unless given)")
	fs.IntVar(&c.maxConsumers, "max-consumers", imp2.DefaultMaxConsumers, "netlink: most consumers registered at once (the module's max_consumers); one more is refused with ENOSPC")
	fs.BoolVar(&c.allowUnprivileged, "allow-unprivileged", false, "netlink: let consumers without CAP_NET_ADMIN register (the module's allow_unprivileged=1); by default they are refused with EPERM")
	fs.DurationVar(&c.linger, "linger", 2*time.Second, "netlink: after the last frame, keep answering (IMP2_GET_STATS, IMP2_CLOSE) until every consumer has unregistered or this passes")
	fs.Float64Var(&c.speed, "speed", 1, "replay the recorded timing this many times faster")
	fs.Float64Var(&c.pps, "pps", 0, "replay at this many frames per second, ignoring recorded gaps")
	fs.BoolVar(&c.topspeed, "topspeed", false, "replay as fast as possible")
	fs.BoolVar(&c.realtime, "realtime", false, "text, json, pcapng: follow the clock (default: write at once, re-timed)")
	fs.IntVar(&c.loops, "loop", 1, "replay the trace N times (0: until -limit, -duration or a signal); N≠1 keeps the trace in memory")
	fs.DurationVar(&c.loopDelay, "loop-delay", 0, "pause between loops (after the last frame of one, before the first of the next)")
	fs.Int64Var(&c.limit, "limit", 0, "stop after N frames (0: no limit)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this much replay time (0: no limit)")
	fs.IntVar(&c.batch, "batch", 64, "most frames per send (sendmmsg); paced replays batch only frames already due")
	fs.DurationVar(&c.spin, "spin", pace.DefaultSpin, "spin instead of sleeping for the last part of each wait")
	fs.IntVar(&c.rt, "rt", 0, "paced replays: run the sending thread SCHED_FIFO at this priority (1-99, needs CAP_SYS_NICE)")
	fs.IntVar(&c.readahead, "readahead", 64<<20, "bytes of decoded trace held ahead of the sender: read before the clock starts, and the bound on that memory whatever the frame sizes (a larger frame goes through alone)")
	fs.DurationVar(&c.stats, "stats", 0, "print progress every interval (0: only the summary)")
	fs.BoolVar(&c.json, "json", false, "summary and progress as JSON")
	fs.StringVar(&c.compress, "compress", "zstd", "pcapng: zstd or none")
	fs.StringVar(&c.netnsDst, "netns-dst", "", "icmp: send into this existing namespace (a name in /run/netns, or a file such as /proc/1/ns/net for the root one) instead of a fresh one; needs nft")
	fs.BoolVar(&c.verify, "verify", false, "icmp: record the module's events as a second consumer and compare them with the replayed ones")
	fs.IntVar(&c.verifyRcvBuf, "verify-rcvbuf", 16<<20, "icmp: receive buffer of the verifying consumer, bytes (forced past rmem_max as root)")
	fs.DurationVar(&c.verifyWait, "verify-wait", time.Second, "icmp: after the last packet, wait this long without an event for the missing ones")
	fs.Int64Var(&c.tolerate, "verify-tolerate", 0, "icmp: missing + extra events allowed before the exit status is 5")
	fs.BoolVar(&c.vm, "vm", false, "icmp: run inside the qemu harness with the module built from this checkout")
	fs.StringVar(&c.vmConsumer, "vm-consumer", "", "icmp -vm: a static host program (and its arguments) started as a consumer in the destination namespace inside the VM")
	fs.StringVar(&c.vmConsumerOut, "vm-consumer-out", "", "icmp -vm: write the -vm-consumer's output to this file")
	fs.DurationVar(&c.vmTimeout, "vm-timeout", 10*time.Minute, "icmp -vm: bound on the whole VM run")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\n%s\n\n%s\n", filterSyntax, exitCodesHelp)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.flagsSet = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.flagsSet[f.Name] = true })
	c.args = args
	return c, c.check()
}

const usageHead = `usage: imp2-replay -i TRACE [-to netlink|icmp|text|json|pcapng] [options]

Outputs:
  netlink  act as the imp2 kernel side on a netlink socket (-family, -bind): consumers
           register with IMP2_U_PID (each gets every frame) or -dest names a fixed port.
           Only kernel→user frames are sent, byte for byte; recorded user→kernel frames
           (a recorder's own IMP2_U_PID/IMP2_CLOSE) and frames whose direction the trace
           does not tell (an nlmon capture's frames other than imp2's, whose direction
           comes from the message type) are skipped and counted. MSG_DONTWAIT:
           a full consumer queue loses the frame and counts EAGAIN, never retried.
           As with the module, consumers need CAP_NET_ADMIN (-allow-unprivileged)
           and at most -max-consumers register at once. A replay that delivers nothing
           to -dest or to the consumers it waited for fails (exit 4).
  icmp     for each recorded event (IMP2_K_MSG), the ICMP packet that caused it:
           recorded src/dest, type/code/id/seq and ip_len, sent from a namespace of
           its own across a veth into a fresh namespace or -netns-dst, where the
           module's hook and the consumers are; -verify compares what the module
           emits with the trace; -vm runs it all in the qemu harness.
  text     one line per frame: time dir family type len seq pid [src dest ...]
  json     the same fields, one JSON object per line
  pcapng   a new trace: filtered, cut, re-timed, looped or merged (several -i)
Timing: as recorded (default), -speed, -pps or -topspeed. File outputs are written at
once with re-timed timestamps unless -realtime. The summary goes to stdout, or to
stderr when the data does.

`

// inputList is the repeatable -i flag.
type inputList []string

func (l *inputList) String() string     { return strings.Join(*l, ",") }
func (l *inputList) Set(v string) error { *l = append(*l, v); return nil }

const exitCodesHelp = `Exit codes: 0 done; 1 runtime or output error; 2 usage (or an output that is
an input); 3 bad or truncated input (complete frames were replayed); 4 no consumer
within -wait, or nothing delivered to -dest or the registered consumers; 5 -verify
found missing or extra events; 130 interrupted.`

func (c *config) check() error {
	switch {
	case len(c.in) == 0:
		return errors.New("-i is required")
	case len(c.in) > 1 && slices.Contains(c.in, "-"):
		return errors.New("-i - (stdin) cannot be merged with other inputs")
	case c.to != "netlink" && c.to != "icmp" && c.to != "text" && c.to != "json" && c.to != "pcapng":
		return fmt.Errorf("-to %q: want netlink, icmp, text, json or pcapng", c.to)
	case c.speed <= 0:
		return errors.New("-speed must be positive")
	case c.pps < 0:
		return errors.New("-pps must be positive")
	case c.batch < 1 || c.batch > 1024:
		return errors.New("-batch must be 1..1024")
	case c.loops < 0 || c.limit < 0 || c.duration < 0 || c.loopDelay < 0 || c.linger < 0:
		return errors.New("-loop, -limit, -duration, -loop-delay and -linger cannot be negative")
	case c.bind > 1<<32-1 || c.dest > 1<<32-1:
		return errors.New("-bind and -dest are 32-bit port ids")
	case c.rt < 0 || c.rt > 99:
		return errors.New("-rt is a SCHED_FIFO priority, 1..99 (0: off)")
	case c.minConsumers < 0:
		return errors.New("-min-consumers cannot be negative")
	case c.maxConsumers < 1:
		return errors.New("-max-consumers must be at least 1")
	case c.to == "netlink" && c.minConsumers > c.maxConsumers:
		return fmt.Errorf("-min-consumers %d can never register with -max-consumers %d", c.minConsumers, c.maxConsumers)
	case c.compress != "zstd" && c.compress != "none":
		return fmt.Errorf("-compress %q: want zstd or none", c.compress)
	}
	n := 0
	for _, f := range []string{"speed", "pps", "topspeed"} {
		if c.flagsSet[f] {
			n++
		}
	}
	if n > 1 {
		return errors.New("-speed, -pps and -topspeed are exclusive")
	}
	if (c.to == "netlink" || c.to == "icmp") && c.flagsSet["realtime"] {
		return fmt.Errorf("-realtime is for file outputs; -to %s always follows the clock", c.to)
	}
	return c.checkICMP()
}

// run is main without os.Exit, for tests.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "imp2-replay: %v\n", err)
		return exitUsage
	}
	f, err := parseFilter(c.filter)
	if err != nil {
		fmt.Fprintf(stderr, "imp2-replay: -filter: %v\n", err)
		return exitUsage
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "imp2-replay: "+format+"\n", args...) }
	if err := c.checkInOut(stdin, stdout); err != nil {
		logf("%v", err)
		return exitUsage
	}

	if c.vm {
		return runVM(c, stdin, stdout, stderr, logf)
	}

	// Input.
	var readers []*pcapnl.Reader
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	for _, name := range c.in {
		var src io.Reader = stdin
		if name != "-" {
			fh, err := os.Open(name)
			if err != nil {
				logf("input: %v", err)
				return exitInput
			}
			defer fh.Close()
			src = fh
		}
		rd, err := pcapnl.NewReader(src)
		if err != nil {
			logf("input %s: %v", name, err)
			return exitInput
		}
		rd.SetIMP2Families(imp2.DefaultFamily, imp2.UserSockFamily) // as isIMP2
		readers = append(readers, rd)
	}
	var source frameSource = readers[0]
	if len(readers) > 1 {
		source = newMerger(c.in, readers)
	}

	// Everything that can fail is tried before the output binds its port,
	// so that no consumer registers with a replay that cannot run.
	if c.rt > 0 && !c.topspeed && (c.to == "netlink" || c.to == "icmp" || c.realtime) {
		if err := checkRealtime(c.rt); err != nil {
			logf("-rt %d: SCHED_FIFO: %v", c.rt, err)
			return exitError
		}
	}

	// Output; the summary goes to stdout unless the data does.
	sumW := stdout
	stop := new(atomic.Bool)
	out, err := c.newOutput(stdout, stop, logf)
	if err != nil {
		logf("%v", err)
		return exitError
	}
	if c.to != "netlink" && c.to != "icmp" && c.out == "-" {
		sumW = stderr
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		select {
		case <-sig:
			stop.Store(true)
			cancel()
		case <-ctx.Done():
		}
	}()

	in := newInput(source, f, c.readahead, c.loops != 1, out.skipKernel())
	defer in.close()
	if err := out.start(ctx); err != nil {
		out.close()
		logf("%v", err)
		switch {
		case errors.Is(err, errNoConsumer):
			return exitNoConsumer
		case ctx.Err() != nil:
			return exitInterrupted
		}
		return exitError
	}
	in.waitPrimed()

	t := timing{
		speed: c.speed, pps: c.pps, topspeed: c.topspeed, loops: c.loops, loopDelay: c.loopDelay,
		limit: c.limit, duration: c.duration, batch: c.batch, spin: c.spin, rt: c.rt,
		wait: out.realtime() || c.realtime,
	}
	r := newReplayer(t, in, out, stop)
	done := make(chan struct{})
	if c.stats > 0 {
		go progress(sumW, c.json, c.stats, r, out, done)
	}
	sendErr := r.run()
	close(done)
	stopped := stop.Load()
	in.close()
	closeErr := out.close()

	s := summary{Output: c.to}
	r.summarize(&s)
	nl, _ := out.(*netlinkOut)
	if nl != nil {
		s.netlinkSummary(nl)
	}
	if o, ok := out.(interface{ summary() *icmpSummary }); ok {
		s.ICMP = o.summary()
		s.SendErrors = s.ICMP.SendErrors
	}
	var msgs []string
	code := exitOK
	switch {
	case sendErr != nil:
		msgs, code = append(msgs, sendErr.Error()), exitError
	case closeErr != nil:
		msgs, code = append(msgs, fmt.Sprintf("output: %v", closeErr)), exitError
	}
	// An input error is reported when the replay reached it: not when
	// -limit or -duration stopped it first (the reader had read ahead).
	if in.err != nil && r.drained {
		msgs = append(msgs, inputError(c.in, in.err))
		if code == exitOK {
			code = exitInput
		}
	}
	if v := s.verifyReport(); v != nil && !v.OK && code == exitOK {
		msgs = append(msgs, fmt.Sprintf("-verify: %d missing and %d extra event(s), more than -verify-tolerate %d", v.Missing, v.Extra, v.Tolerance))
		code = exitVerify
	}
	if nl != nil {
		if why := nl.undelivered(s.FramesSent); why != "" {
			msgs = append(msgs, why)
			if code == exitOK {
				code = exitNoConsumer
			}
		}
	}
	if stopped && code == exitOK {
		msgs, code = append(msgs, "interrupted"), exitInterrupted
	}
	s.Error, s.ExitCode = strings.Join(msgs, "; "), code
	s.write(sumW, c.json)
	for _, m := range msgs {
		logf("%s", m)
	}
	return code
}

func inputError(names inputList, err error) string {
	name := names[0]
	var ie *inputErr
	if errors.As(err, &ie) {
		name = ie.name
	}
	var pe *pcapnl.Error
	if errors.As(err, &pe) {
		what := "malformed"
		if errors.Is(err, pcapnl.ErrTruncated) {
			what = "truncated"
		}
		return fmt.Sprintf("input %s is %s: replayed the %d complete frame(s) before offset %d, then stopped: %v",
			name, what, pe.Frames, pe.Offset, pe)
	}
	return fmt.Sprintf("input %s: %v", name, err)
}

func (c *config) newOutput(stdout io.Writer, stop *atomic.Bool, logf func(string, ...any)) (output, error) {
	if c.to == "icmp" {
		ic := icmpConfig{
			netnsDst: c.netnsDst, wait: c.wait, verify: c.verify, verifyRcvBuf: c.verifyRcvBuf,
			verifyWait: c.verifyWait, tolerate: c.tolerate, topspeed: c.topspeed, batch: c.batch,
		}
		// Packets can be sent without any consumer: wait only when asked.
		if c.flagsSet["min-consumers"] {
			ic.minConsumers = c.minConsumers
		}
		if c.flagsSet["family"] {
			ic.family = c.family
		}
		return newICMPOut(ic, stop, logf)
	}
	if c.to == "netlink" {
		minConsumers := c.minConsumers
		if c.dest != 0 && !c.flagsSet["min-consumers"] {
			minConsumers = 0 // -dest alone needs no registration
		}
		return &netlinkOut{
			family: c.family, bind: uint32(c.bind), dest: uint32(c.dest), netns: c.netns,
			wait: c.wait, minConsumers: minConsumers, maxConsumers: c.maxConsumers,
			allowUnprivileged: c.allowUnprivileged, linger: c.linger, stop: stop, log: logf,
		}, nil
	}
	w, closer := stdout, io.Closer(nil)
	if c.out != "-" {
		fh, err := os.Create(c.out)
		if err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
		w, closer = fh, fh
	}
	switch c.to {
	case "text", "json":
		return newTextOut(w, closer, c.to == "json", c.realtime), nil
	default: // pcapng
		opts := pcapnl.WriterOptions{Application: "imp2-replay"}
		if c.compress == "none" {
			opts.Compression = pcapnl.None
		}
		o, err := newPcapngOut(w, closer, opts)
		if err != nil && closer != nil {
			closer.Close()
		}
		return o, err
	}
}

// checkInOut refuses an output file that is one of the inputs (the same
// device and inode, as cp and cat check): creating it would truncate the
// input before it is read. An output that does not exist yet, or that is
// not a regular file (a pipe, a terminal, /dev/null), is fine.
func (c *config) checkInOut(stdin io.Reader, stdout io.Writer) error {
	if c.to != "text" && c.to != "json" && c.to != "pcapng" {
		return nil
	}
	outName, out := "-o "+c.out, os.FileInfo(nil)
	if c.out == "-" {
		outName = "standard output"
		if f, ok := stdout.(*os.File); ok {
			out, _ = f.Stat()
		}
	} else {
		out, _ = os.Stat(c.out)
	}
	if out == nil || !out.Mode().IsRegular() {
		return nil
	}
	for _, name := range c.in {
		var in os.FileInfo
		if name == "-" {
			if f, ok := stdin.(*os.File); ok {
				in, _ = f.Stat()
			}
		} else {
			in, _ = os.Stat(name)
		}
		if in != nil && os.SameFile(in, out) {
			return fmt.Errorf("-i %s and %s are the same file: writing it would destroy the input", name, outName)
		}
	}
	return nil
}

// checkRealtime tries SCHED_FIFO at prio on a thread of its own and puts
// it back, so that a replay that may not use -rt says so before any
// consumer registers.
func checkRealtime(prio int) error {
	errc := make(chan error, 1)
	go func() {
		w := pace.NewWaiter(pace.Clock{}, 0)
		w.Lock()
		defer w.Unlock()
		errc <- w.Realtime(prio)
	}()
	return <-errc
}
