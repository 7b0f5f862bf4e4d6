package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/results"
)

// parseRun reads `imp2-bench run`'s flags into the engine's options; args
// are also what -vm passes on to the guest.
func parseRun(args []string, stderr io.Writer) (*bench.Options, error) {
	fs := flag.NewFlagSet("imp2-bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &bench.Options{Progress: stderr}
	var rates, rcvbufs, delays string
	fs.StringVar(&o.Source, "source", "kmod", "event source: kmod (the module), nflog (the kernel's NFLOG path) or emu (user-space emulation)")
	fs.BoolVar(&o.VM, "vm", false, "run the sweep inside the qemu VM harness (kmod on a host that cannot load modules; nflog there as its peer)")
	fs.StringVar(&o.Kernel, "kernel", "", "with -vm: boot this kernel of the matrix (6.1, 6.12, 7.3, 7.3-rt; fetched into the cache once) instead of the installed one")
	fs.StringVar(&rates, "rates", "1000,4000,16000", "offered ICMP rates, packets/s, comma-separated")
	fs.StringVar(&rcvbufs, "rcvbufs", "212992,16K", "consumer receive buffers, effective bytes (the kernel's sk_rcvbuf; K and M suffixes), comma-separated")
	fs.StringVar(&delays, "delays", "0", "artificial per-event consumer work (busy loop), Go durations up to "+bench.MaxDelay.String()+", comma-separated")
	fs.DurationVar(&o.Duration, "duration", 500*time.Millisecond, "flood duration of each sample")
	fs.IntVar(&o.Reps, "reps", 6, "samples per step (compare needs at least 6)")
	fs.BoolVar(&o.NoENOBUFS, "no-enobufs", false, "set NETLINK_NO_ENOBUFS on the consumer")
	qthresh := fs.Uint("qthresh", 1, "nflog: packets per netlink message (1 = one per event like imp2; 0 = kernel batching)")
	fs.StringVar(&o.Out, "out", "", "result directory (default results/<source>-<time>)")
	fs.BoolVar(&o.Plot, "plot", true, "write plots into the result directory")
	fs.BoolVar(&o.Overhead, "overhead", true, "measure the consumer's latency-recording overhead")
	fs.IntVar(&o.TraceFrames, "trace-frames", 20000, "frames of one sample kept in trace.pcapng.zst (0: none)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.Rates, err = parseInts("-rates", rates); err != nil {
		return nil, err
	}
	if o.RcvBufs, err = parseSizes("-rcvbufs", rcvbufs); err != nil {
		return nil, err
	}
	if o.Delays, err = parseDurations("-delays", delays); err != nil {
		return nil, err
	}
	if err := checkRun(o); err != nil {
		return nil, err
	}
	o.QThresh = uint32(*qthresh)
	if o.Out == "" {
		o.Out = filepath.Join("results", o.Source+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	o.GuestArgs = append(append([]string{"run"}, guestArgs(args)...), "-out", bench.GuestOut, "-plot=false")
	return o, nil
}

// checkRun says which flag is out of range.
func checkRun(o *bench.Options) error {
	for _, d := range o.Delays {
		if d > bench.MaxDelay {
			return fmt.Errorf("-delays %v: at most %v of busy work per event (a slower consumer is a stalled one: every sample's drain gives up %v after its flood)", d, bench.MaxDelay, bench.DrainLimit)
		}
	}
	switch o.Source {
	case results.SourceKmod, results.SourceNFLOG, results.SourceEmu:
	default:
		return fmt.Errorf("-source %q: want kmod, nflog or emu", o.Source)
	}
	if o.VM && o.Source == results.SourceEmu {
		return fmt.Errorf("-vm runs kmod or nflog; emu runs on the host")
	}
	if o.Kernel != "" && !o.VM {
		return fmt.Errorf("-kernel %s needs -vm: the host runs its own kernel", o.Kernel)
	}
	if o.Duration <= 0 || o.Duration > 10*time.Minute {
		return fmt.Errorf("-duration %v: want more than 0 and at most 10m", o.Duration)
	}
	if o.Reps < 1 {
		return fmt.Errorf("-reps %d: want at least 1", o.Reps)
	}
	for _, b := range o.RcvBufs {
		if b < 4608 {
			return fmt.Errorf("-rcvbufs %d: the kernel's minimum is 4608 bytes", b)
		}
	}
	return nil
}

// guestArgs drops the flags that mean something else in the guest.
func guestArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch name {
		case "vm", "plot":
		case "out", "kernel":
			if !hasValue {
				i++ // its value
			}
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// runCmd is `imp2-bench run`.
func runCmd(args []string, stdout, stderr io.Writer) int {
	o, err := parseRun(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "imp2-bench:", err)
		}
		return exitUsage
	}
	ctx, stop := notifyInterrupts(o)
	defer stop()
	run, err := bench.Run(ctx, *o)
	if code, failed := failure(stderr, "imp2-bench:", err); failed {
		return code
	}
	if err := bench.WriteOutputs(*o, run, stdout); err != nil {
		fmt.Fprintln(stderr, "imp2-bench:", err)
		return exitFailure
	}
	if run.Partial {
		fmt.Fprintln(stderr, "imp2-bench:", run.Describe())
		return exitInterrupted
	}
	return exitOK
}

// failure reports err, if any, with its exit status: interrupted before
// anything completed, or failed.
func failure(stderr io.Writer, prefix string, err error) (int, bool) {
	if err == nil {
		return exitOK, false
	}
	fmt.Fprintln(stderr, prefix, err)
	if errors.Is(err, bench.ErrNothingCompleted) {
		return exitInterrupted, true
	}
	return exitFailure, true
}
