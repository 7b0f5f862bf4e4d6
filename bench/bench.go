// Package bench is the engine of imp2-bench: it load-tests the imp2
// kernel→user netlink path with ICMP floods through the hooked path and
// measures, per sweep step (rate × receive buffer × consumer delay),
// delivery, drops (reconciled across the module's, the socket's and the
// sequence numbers' accounts), receive-queue occupancy, the burst a queue
// holds, and unicast and end-to-end latency histograms.
//
// Run runs a sweep (on this host or inside the qemu VM harness) and
// returns a results.Run; WriteOutputs writes its result directory. AB
// benchmarks two module builds interleaved in one VM. Cancelling the
// context of a run stops it at a sample boundary: the sample in progress
// is dropped and the run returned holds the rest, marked partial, or the
// error is ErrNothingCompleted.
//
// Everything here needs Linux, root and network namespaces; the portable
// part is the Options type and its documentation.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// Options is one sweep.
type Options struct {
	// Source is the event source: results.SourceKmod (the module),
	// SourceNFLOG (the kernel's NFLOG path), SourceEmu (a user-space
	// emulation of the module), SourceBPF (the hook as a netfilter BPF
	// program writing a BPF ring buffer) or SourceBPFTC (that program at
	// tc ingress).
	Source string
	// VM runs the sweep inside the qemu VM harness (any source but emu), on
	// Kernel: a kernel of the matrix (internal/vm/matrix.go), or "" for
	// the installed one.
	VM     bool
	Kernel string
	// Rates are the offered ICMP rates in packets/s; RcvBufs the consumer
	// receive buffers (effective bytes); Delays the busy work per event on
	// the consumer's thread, each at most MaxDelay.
	Rates   []int
	RcvBufs []int
	Delays  []time.Duration
	// Duration is the flood duration of each sample (long enough for
	// MinSamplePackets at every rate), Reps the samples per step.
	Duration time.Duration
	Reps     int
	// NoENOBUFS sets NETLINK_NO_ENOBUFS on the consumer.
	NoENOBUFS bool
	// QThresh is nflog's packets per netlink message (0: kernel batching).
	QThresh uint32
	// Out is the result directory (RunAndWrite: DefaultOut(Source) when
	// empty); Plot says whether WriteOutputs draws plots into it. One that
	// holds an earlier run's results is refused before the sweep starts
	// (RunAndWrite, AB, Matrix), unless Force.
	Out   string
	Plot  bool
	Force bool
	// Overhead measures the consumer's latency-recording overhead.
	Overhead bool
	// TraceFrames is how many frames of one sample the trace keeps (0:
	// no trace).
	TraceFrames int
	// Build names the build of the tool that runs the sweep (the
	// command's -version string); it goes into results.json's
	// Environment.Build.
	Build string
	// Progress receives one line per sample and notes (nil: none).
	Progress io.Writer `json:"-"`
	// Hard, when closed, stops at once what cannot stop at a sample
	// boundary by itself: the VM, whose guest was asked to stop when the
	// run's context ended.
	Hard <-chan struct{} `json:"-"`
}

// String describes the sweep in one line.
func (o Options) String() string {
	where := ""
	if o.VM {
		where = " in the VM"
		if o.Kernel != "" {
			where += " (kernel " + o.Kernel + ")"
		}
	}
	s := fmt.Sprintf("%s%s: rates %s pps, rcvbufs %s, delays %s, %v per sample, %d reps", o.Source, where,
		join(o.Rates, strconv.Itoa), join(o.RcvBufs, strconv.Itoa), join(o.Delays, results.FormatDelay), o.Duration, o.Reps)
	if o.NoENOBUFS {
		s += ", NETLINK_NO_ENOBUFS"
	}
	if o.Source == results.SourceNFLOG {
		s += fmt.Sprintf(", qthresh %d", o.QThresh)
	}
	return s
}

func join[T any](v []T, f func(T) string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = f(x)
	}
	return strings.Join(s, ",")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// GuestOut is the result directory of a sweep inside the VM.
const GuestOut = "/share/out"

// GuestCommand is the imp2-bench subcommand that the VM's script starts
// with the job file the host wrote: the command hands it to Guest.
const GuestCommand = "guest"

// MaxDelay bounds Options.Delays. The delay is busy work per event on the
// consumer's thread; a second per event already makes a consumer that
// reads at most DrainLimit/MaxDelay events after the flood before the
// drain gives up, far fewer than the default buffer holds (277).
const MaxDelay = time.Second

// MinSamplePackets is the fewest packets a sample may flood at its rate:
// with fewer, its latency percentiles and drop rate are a few events'
// accidents, and compare would judge noise.
const MinSamplePackets = 10

// DrainLimit ends a sample's drain this long after the flood's planned
// end, drained or not: a stalled consumer does not hold the sweep.
const DrainLimit = 30 * time.Second

// ErrNothingCompleted ends a run interrupted before its first sample
// completed: there is nothing to write.
var ErrNothingCompleted = errors.New("interrupted before the first sample completed: nothing written")

// Interrupt is the cause to cancel a run's context with (context.
// WithCancelCause): results then name Signal as what stopped the run.
type Interrupt struct{ Signal string }

func (e *Interrupt) Error() string { return "interrupted by " + e.Signal }

// signalName is the signal that cancelled ctx ("SIGINT", "SIGTERM"), or
// "" when no Interrupt did.
func signalName(ctx context.Context) string {
	var in *Interrupt
	if !errors.As(context.Cause(ctx), &in) {
		return ""
	}
	return in.Signal
}

// ABOptions is an interleaved benchmark of two module builds.
type ABOptions struct {
	// Sweep is the kmod sweep each build runs; its Out holds base/ and
	// new/ (DefaultOut("ab") when empty), its Progress gets the notes.
	Sweep Options
	// Base is the base build: a git revision of the checkout (its kmod/
	// is built in a temporary folder) or a .ko file. New is a .ko file,
	// or "" for the working tree's kmod/.
	Base, New string
	// Compare holds the thresholds of the verdict.
	Compare compare.Config
}

// ABResult is what AB measured: the base and new runs and their builds'
// labels, and the verdict comparing them, nil when interrupted (part of
// a sweep is not judged; a side without a sample has a nil run).
type ABResult struct {
	Runs    [2]*results.Run
	Labels  [2]string
	Verdict *compare.Verdict
}

// The folders of an ab result directory, one run each.
const (
	ABBaseDir = "base"
	ABNewDir  = "new"
)
