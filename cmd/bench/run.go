package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/cli"
)

// sweepFlags registers the sweep's flags, which run, ab and matrix share,
// on fs; o.Validate checks them after the parse.
func sweepFlags(fs *flag.FlagSet, o *bench.Options) {
	o.Build = cli.Version()
	cli.ListVar(fs, &o.Rates, "rates", "1000,4000,16000", bench.ParseInts, "offered ICMP rates, packets/s, comma-separated")
	cli.ListVar(fs, &o.RcvBufs, "rcvbufs", "212992,16K", bench.ParseSizes, "consumer receive buffers, effective bytes (the kernel's sk_rcvbuf; K and M suffixes), comma-separated")
	cli.ListVar(fs, &o.Delays, "delays", "0", bench.ParseDurations, "artificial per-event consumer work (busy loop), Go durations up to "+bench.MaxDelay.String()+", comma-separated")
	cli.DurationVar(fs, &o.Duration, "duration", 500*time.Millisecond, "flood duration of each sample (a bare number: seconds)")
	fs.IntVar(&o.Reps, "reps", 6, "samples per step (compare needs at least 6)")
	fs.BoolVar(&o.NoENOBUFS, "no-enobufs", false, "set NETLINK_NO_ENOBUFS on the consumer")
	cli.Uint32Var(fs, &o.QThresh, "qthresh", 1, "nflog: packets per netlink message (1 = one per event like imp2; 0 = kernel batching)")
	fs.BoolVar(&o.Overhead, "overhead", true, "measure the consumer's latency-recording overhead")
	fs.IntVar(&o.TraceFrames, "trace-frames", 20000, "frames of one sample kept in trace.pcapng.zst (0: none)")
}

// sourceFlags registers the flags that run and matrix share beyond the
// sweep's: the event source and the plots.
func sourceFlags(fs *flag.FlagSet, o *bench.Options) {
	fs.StringVar(&o.Source, "source", "kmod", "event source: kmod (the module), nflog (the kernel's NFLOG path), emu (user-space emulation), bpf (netfilter BPF program and ring buffer, Linux 6.4 on) or bpf-tc (the same program at tc ingress: another hook point, for older kernels)")
	fs.BoolVar(&o.Plot, "plot", true, "write plots into the result directory")
}

// parseRun reads `imp2-bench run`'s flags into the engine's options; ok
// false: exit with code, the message written.
func parseRun(args []string, stdout, stderr io.Writer) (*bench.Options, int, bool) {
	c := cli.New("imp2-bench run", "imp2-bench run [flags]", `
Run a sweep (every rate × receive buffer × consumer delay, -reps samples each) on
this host or in the qemu VM (-vm), and write its result directory: results.json,
bench.txt (benchstat format), trace.pcapng.zst and plots.`, exitsSweep)
	o := bench.Options{Progress: stderr}
	sourceFlags(c.Flags, &o)
	sweepFlags(c.Flags, &o)
	c.Flags.BoolVar(&o.VM, "vm", false, "run the sweep inside the qemu VM harness (kmod on a host that cannot load modules; nflog there as its peer)")
	c.Flags.StringVar(&o.Kernel, "kernel", "", "with -vm: boot this kernel of the matrix (6.1, 6.12, 7.3, 7.3-rt; fetched into the cache once) instead of the installed one")
	c.Flags.StringVar(&o.Out, "out", "", "result `DIR` (default results/<source>-<time>)")
	if _, code, ok := c.ParseArgs(args, 0, 0, stdout, stderr); !ok {
		return nil, code, false
	} else if err := o.Validate(); err != nil {
		return nil, exitFor(stderr, c.Name+":", err), false // names the flag
	}
	if o.Out == "" {
		o.Out = bench.DefaultOut(o.Source)
	}
	return &o, exitOK, true
}

// runCmd is `imp2-bench run`.
func runCmd(args []string, stdout, stderr io.Writer) int {
	o, code, ok := parseRun(args, stdout, stderr)
	if !ok {
		return code
	}
	return sweep(*o, stdout, stderr)
}

// sweep runs the sweep of o and writes its outputs.
func sweep(o bench.Options, stdout, stderr io.Writer) int {
	ctx, hard, stop := bench.NotifyInterrupts()
	defer stop()
	o.Hard = hard
	run, err := bench.RunAndWrite(ctx, o, stdout)
	if err != nil {
		return exitFor(stderr, "imp2-bench:", err)
	}
	if run.Partial {
		fmt.Fprintln(stderr, "imp2-bench:", run.Describe())
		return exitInterrupted
	}
	return exitOK
}
