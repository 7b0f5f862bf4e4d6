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
	"io"
	"time"
)

// Options is one sweep.
type Options struct {
	// Source is the event source: results.SourceKmod (the module),
	// SourceNFLOG (the kernel's NFLOG path) or SourceEmu (a user-space
	// emulation of the module).
	Source string
	// VM runs the sweep inside the qemu VM harness (kmod or nflog), on
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
	// Duration is the flood duration of each sample, Reps the samples
	// per step.
	Duration time.Duration
	Reps     int
	// NoENOBUFS sets NETLINK_NO_ENOBUFS on the consumer.
	NoENOBUFS bool
	// QThresh is nflog's packets per netlink message (0: kernel batching).
	QThresh uint32
	// Out is the result directory; Plot says whether WriteOutputs draws
	// plots into it.
	Out  string
	Plot bool
	// Overhead measures the consumer's latency-recording overhead.
	Overhead bool
	// TraceFrames is how many frames of one sample the trace keeps (0:
	// no trace).
	TraceFrames int
	// GuestArgs is the imp2-bench command line (without the program)
	// that repeats this sweep inside the VM, writing into GuestOut
	// without plots: the command that made Options makes it.
	GuestArgs []string
	// Progress receives one line per sample and notes (nil: none).
	Progress io.Writer
	// Hard, when closed, stops at once what cannot stop at a sample
	// boundary by itself: the VM, whose guest was asked to stop when the
	// run's context ended.
	Hard <-chan struct{}
}

// GuestOut is the result directory of a sweep inside the VM.
const GuestOut = "/share/out"

// MaxDelay bounds Options.Delays. The delay is busy work per event on the
// consumer's thread; a second per event already makes a consumer that
// reads at most DrainLimit/MaxDelay events after the flood before the
// drain gives up, far fewer than the default buffer holds (277).
const MaxDelay = time.Second

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
	// new/, its Progress gets the notes.
	Sweep Options
	// Base is the base build: a git revision of the checkout (its kmod/
	// is built in a temporary folder) or a .ko file. New is a .ko file,
	// or "" for the working tree's kmod/.
	Base, New string
	// GuestArgs makes the imp2-bench command line (without the program)
	// of the guest's side: ABGuest on the two module files, their labels
	// and the sweep, writing into GuestOut.
	GuestArgs func(kos, labels [2]string) []string
}

// The folders of an ab result directory, one run each.
const (
	ABBaseDir = "base"
	ABNewDir  = "new"
)
