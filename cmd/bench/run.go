package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/cli"
	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/vm"
)

// The commands that sweep: run, matrix, and merge for their reports.

// sweepFlags registers the sweep's flags, which run, ab and matrix share,
// on fs; o.Validate checks them after the parse.
func sweepFlags(fs *flag.FlagSet, o *bench.Options) {
	o.Build = cli.Version()
	cli.ListVar(fs, &o.Rates, "rates", "1000,4000,16000", bench.ParseInts, "offered ICMP rates, packets/s, comma-separated")
	cli.ListVar(fs, &o.RcvBufs, "rcvbufs", "212992,16K", bench.ParseSizes, "consumer receive buffers, effective bytes (the kernel's sk_rcvbuf; K/M/G suffixes, powers of 1024), comma-separated")
	cli.ListVar(fs, &o.Delays, "delays", "0", bench.ParseDurations, "artificial per-event consumer work (busy loop), durations up to "+bench.MaxDelay.String()+" (a bare number: seconds), comma-separated")
	cli.DurationVar(fs, &o.Duration, "duration", 500*time.Millisecond, "flood duration of each sample (a bare number: seconds)")
	fs.IntVar(&o.Reps, "reps", 6, "samples per step (compare needs at least 6)")
	fs.BoolVar(&o.Force, "force", false, "overwrite result directories that hold an earlier run's results")
	fs.BoolVar(&o.NoENOBUFS, "no-enobufs", false, "set NETLINK_NO_ENOBUFS on the consumer")
	fs.BoolVar(&o.Overhead, "overhead", true, "measure the consumer's latency-recording overhead")
	cli.IntVar(fs, &o.TraceFrames, "trace-frames", 20000, 0, cli.NoMax, "frames of one sample kept in trace.pcapng.zst (0: none; -source nflog writes none)")
}

// sourceFlags registers the flags that run and matrix share beyond the
// sweep's: the event source, its options and the plots. ab has none of
// them: it always runs the module. checkSource checks them after the
// parse.
func sourceFlags(fs *flag.FlagSet, o *bench.Options) {
	fs.StringVar(&o.Source, "source", "kmod", "event source: kmod (the module), nflog (the kernel's NFLOG path), emu (user-space emulation), bpf (netfilter BPF program and ring buffer, Linux 6.4 on) or bpf-tc (the same program at tc ingress: another hook point, for older kernels)")
	cli.Uint32Var(fs, &o.QThresh, "qthresh", 1, "with -source nflog: packets per netlink message (1 = one per event like imp2; 0 = kernel batching)")
	fs.BoolVar(&o.Plot, "plot", true, "write plots into the result directory")
}

var runSub = cli.Sub{Name: "run", Summary: "run a sweep and write a result directory",
	Usage: "imp2-bench run [flags]", Exits: exitsSweep, Description: `
Run a sweep (every rate × receive buffer × consumer delay, -reps samples each) on
this host or in the qemu VM (-vm), and write its result directory: results.json,
bench.txt (benchstat format), plots/ (with -plot) and trace.pcapng.zst (one
sample's frames, up to -trace-frames; not for -source nflog, whose messages are
not imp2 events).`,
	Setup: func(c *cli.Command) func([]string) error {
		o := bench.Options{Progress: c.Stderr}
		sourceFlags(c.Flags, &o)
		sweepFlags(c.Flags, &o)
		c.Flags.BoolVar(&o.VM, "vm", false, "run the sweep inside the qemu VM harness (kmod on a host that cannot load modules; nflog there as its peer)")
		kernelFlag(c.Flags, &o.Kernel)
		c.Flags.StringVar(&o.Out, "out", "", "result `DIR` (default results/<source>-<time>)")
		return func([]string) error {
			if err := checkSource(c, &o); err != nil {
				return err
			}
			return sweep(c, o)
		}
	}}

// checkSource refuses a source's option given for another source: the
// sweep would ignore it, and its results would not say so.
func checkSource(c *cli.Command, o *bench.Options) error {
	if err := c.Check(cli.Require(o.Source == results.SourceNFLOG, "is nflog's (packets per netlink message); -source "+o.Source+" ignores it", "qthresh")); err != nil {
		return cli.Usagef("%v", err)
	}
	return nil
}

// kernelFlag registers run's -kernel on fs. A name the matrix lacks is
// refused as the flag is parsed (exit 2), as matrix's -kernels is, and
// not once the sweep comes to boot it (exit 1).
func kernelFlag(fs *flag.FlagSet, p *string) {
	names := vm.MatrixNames()
	fs.Func("kernel", "with -vm: boot the matrix kernel `NAME` ("+strings.Join(names, ", ")+"; fetched into the cache once) instead of the installed one", func(s string) error {
		if _, err := vm.LookupKernel(s); err != nil {
			return fmt.Errorf("no kernel %q in the matrix: want one of %s (internal/vm/matrix.go)", s, strings.Join(names, ", "))
		}
		*p = s
		return nil
	})
}

// sweep runs the sweep of o and writes its outputs.
func sweep(c *cli.Command, o bench.Options) error {
	ctx, stop := startSweep(c, &o)
	defer stop()
	run, err := bench.RunAndWrite(ctx, o, c.Stdout)
	if err == nil && run.Partial {
		return interrupted(run.Describe())
	}
	return err
}

var matrixSub = cli.Sub{Name: "matrix", Summary: "run's sweep in the VM on each matrix kernel, and their report",
	Usage: "imp2-bench matrix [-kernels all|LIST] [-out DIR] [run's flags]", Exits: exitsSweep, Description: `
Run run's sweep in the VM on each kernel of the matrix, one result directory per
kernel (DIR/KERNEL), then the cross-kernel report of those that completed
(DIR/report). A kernel that fails does not stop the others (the status is then
1); a usage error or an interrupt stops at once.`,
	Setup: func(c *cli.Command) func([]string) error {
		o := matrixFlags(c)
		return func([]string) error {
			if err := checkSource(c, &o.Sweep); err != nil {
				return err
			}
			if err := checkMatrix(o); err != nil {
				return err
			}
			ctx, stop := startSweep(c, &o.Sweep)
			defer stop()
			res, err := bench.Matrix(ctx, o.MatrixOptions, c.Stdout)
			if err == nil && res.Partial != "" {
				return interrupted(res.Partial)
			}
			return err
		}
	}}

// matrixOptions is matrix's command line: bench.Matrix's options and the
// -kernels list they are made from.
type matrixOptions struct {
	bench.MatrixOptions
	kernels string
}

// matrixFlags registers matrix's flags and run's sweep flags on c.
func matrixFlags(c *cli.Command) *matrixOptions {
	c.Habits = map[string]string{"vm": "matrix runs every sweep in the VM", "kernel": cli.Like("kernels", "matrix runs every sweep in the VM, on the kernels -kernels names")}
	o := &matrixOptions{MatrixOptions: bench.MatrixOptions{Sweep: bench.Options{Progress: c.Stderr, VM: true}}}
	c.Flags.StringVar(&o.kernels, "kernels", "all", "the kernels to run on: all, or a comma-separated list of "+strings.Join(vm.MatrixNames(), ", "))
	c.Flags.StringVar(&o.Out, "out", filepath.Join("results", "matrix"), "matrix `DIR`: one result directory per kernel (DIR/KERNEL), the report in DIR/report")
	sourceFlags(c.Flags, &o.Sweep)
	sweepFlags(c.Flags, &o.Sweep)
	return o
}

// checkMatrix reads -kernels and checks the sweep's flags, before any VM boots.
func checkMatrix(o *matrixOptions) (err error) {
	if o.Kernels, err = bench.MatrixKernels(o.kernels); err != nil {
		return cli.Usagef("-kernels %s: %v", o.kernels, err)
	}
	return o.Sweep.Validate()
}

var mergeSub = cli.Sub{Name: "merge", Summary: "the cross-kernel report of result directories, one per kernel",
	Usage: "imp2-bench merge -out DIR RESULTDIR...", MinArgs: 1, MaxArgs: -1, Exits: "0 success; 1 failure; 2 bad usage or an unusable result directory (a one-line reason).", Description: `
Write the cross-kernel report of result directories made elsewhere (CI shards),
one per kernel (or one per kernel and source: sources side by side), into DIR.
Flags may come before or after the directories.`,
	Setup: func(c *cli.Command) func([]string) error {
		out := c.Flags.String("out", "", "report `DIR` (kernels.md, kernels.json, kernels.png/svg); required")
		return func(dirs []string) error {
			if *out == "" {
				return cli.Usagef("-out is required (usage: %s)", c.Usage)
			}
			return bench.Merge(dirs, *out, c.Stdout)
		}
	}}
