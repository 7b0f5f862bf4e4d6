package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/imp2/imp2/bench"
)

// sweepFlags registers the sweep's flags, which run and ab share, on fs;
// the function returned completes o after fs.Parse.
func sweepFlags(fs *flag.FlagSet, o *bench.Options) func() error {
	var rates, rcvbufs, delays string
	fs.StringVar(&rates, "rates", "1000,4000,16000", "offered ICMP rates, packets/s, comma-separated")
	fs.StringVar(&rcvbufs, "rcvbufs", "212992,16K", "consumer receive buffers, effective bytes (the kernel's sk_rcvbuf; K and M suffixes), comma-separated")
	fs.StringVar(&delays, "delays", "0", "artificial per-event consumer work (busy loop), Go durations up to "+bench.MaxDelay.String()+", comma-separated")
	fs.DurationVar(&o.Duration, "duration", 500*time.Millisecond, "flood duration of each sample")
	fs.IntVar(&o.Reps, "reps", 6, "samples per step (compare needs at least 6)")
	fs.BoolVar(&o.NoENOBUFS, "no-enobufs", false, "set NETLINK_NO_ENOBUFS on the consumer")
	qthresh := fs.Uint("qthresh", 1, "nflog: packets per netlink message (1 = one per event like imp2; 0 = kernel batching)")
	fs.BoolVar(&o.Overhead, "overhead", true, "measure the consumer's latency-recording overhead")
	fs.IntVar(&o.TraceFrames, "trace-frames", 20000, "frames of one sample kept in trace.pcapng.zst (0: none)")
	return func() (err error) {
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		o.QThresh = uint32(*qthresh)
		if o.Rates, err = bench.ParseInts(rates); err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
		if o.RcvBufs, err = bench.ParseSizes(rcvbufs); err != nil {
			return fmt.Errorf("-rcvbufs: %w", err)
		}
		if o.Delays, err = bench.ParseDurations(delays); err != nil {
			return fmt.Errorf("-delays: %w", err)
		}
		return o.Validate()
	}
}

// sourceFlags registers the flags that run and matrix share beyond the
// sweep's: the event source and the plots.
func sourceFlags(fs *flag.FlagSet, o *bench.Options) {
	fs.StringVar(&o.Source, "source", "kmod", "event source: kmod (the module), nflog (the kernel's NFLOG path), emu (user-space emulation), bpf (netfilter BPF program and ring buffer, Linux 6.4 on) or bpf-tc (the same program at tc ingress: another hook point, for older kernels)")
	fs.BoolVar(&o.Plot, "plot", true, "write plots into the result directory")
}

// parseRun reads `imp2-bench run`'s flags into the engine's options.
func parseRun(args []string, stderr io.Writer) (*bench.Options, error) {
	fs := flag.NewFlagSet("imp2-bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &bench.Options{Progress: stderr}
	sourceFlags(fs, o)
	fs.BoolVar(&o.VM, "vm", false, "run the sweep inside the qemu VM harness (kmod on a host that cannot load modules; nflog there as its peer)")
	fs.StringVar(&o.Kernel, "kernel", "", "with -vm: boot this kernel of the matrix (6.1, 6.12, 7.3, 7.3-rt; fetched into the cache once) instead of the installed one")
	fs.StringVar(&o.Out, "out", "", "result directory (default results/<source>-<time>)")
	finish := sweepFlags(fs, o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.Out == "" {
		o.Out = filepath.Join("results", o.Source+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	return o, finish()
}

// runCmd is `imp2-bench run`.
func runCmd(args []string, stdout, stderr io.Writer) int {
	o, err := parseRun(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	} else if err != nil {
		exitFor(stderr, "imp2-bench:", err) // names the flag
		return exitUsage
	}
	return sweep(*o, stdout, stderr)
}

// sweep runs the sweep of o and writes its outputs (run's, and matrix's on
// each kernel).
func sweep(o bench.Options, stdout, stderr io.Writer) int {
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Hard = hard
	run, err := bench.Run(ctx, o)
	if err == nil {
		err = bench.WriteOutputs(o, run, stdout)
	}
	if err != nil {
		return exitFor(stderr, "imp2-bench:", err)
	}
	if run.Partial {
		fmt.Fprintln(stderr, "imp2-bench:", run.Describe())
		return exitInterrupted
	}
	return exitOK
}
