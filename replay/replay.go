// Package replay plays recorded imp2 traces back: into imp2 consumers over
// a real netlink socket (it acts as the kernel side, NewNetlink), as text
// or JSON lines (NewText), as a new pcapng trace (NewPcapng), or through
// the real module by regenerating the ICMP packets behind each event
// (package replay/icmp).
//
// The input side reads one trace, a rotated set (a directory or a glob,
// in the order it was written: set.go) or merges several by timestamp,
// keeps a read-ahead bounded in bytes, and filters (package filter). The scheduler
// sends each frame at a deadline computed from one start time (as
// recorded, scaled, at a fixed rate or at top speed, looped, limited in
// frames or time), so that errors never accumulate. Each output reports
// its own part of the Summary.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/internal/pace"
)

// The exit codes of imp2-replay, carried in Summary.ExitCode and returned
// by Code.
const (
	ExitOK          = 0   // replay complete
	ExitError       = 1   // runtime or output error
	ExitUsage       = 2   // bad options
	ExitInput       = 3   // unreadable, malformed or truncated input
	ExitNoConsumer  = 4   // no consumer registered, or nothing delivered
	ExitVerify      = 5   // the module's events differ from the replayed ones
	ExitInterrupted = 130 // the context ended
)

// DefaultReadAhead is the read-ahead imp2-replay uses: 64 MiB.
const DefaultReadAhead = 64 << 20

// Options say what to replay, how, and where.
type Options struct {
	// Inputs are trace files (pcapng or pcap, zstd/gzip/plain), merged by
	// timestamp when more than one; "-" is Stdin, and cannot be merged. A
	// directory or a glob is a rotated set, read file after file in the
	// order they were written (set.go).
	Inputs []string
	Stdin  io.Reader
	// Filter selects the frames replayed; nil replays all.
	Filter *filter.Filter
	// ReadAhead is the bound, in bytes, of the decoded trace held ahead
	// of the sender, read before the clock starts. Not negative; no upper
	// bound, since memory grows only with what the trace holds.
	ReadAhead int64
	Timing    Timing
	Output    Output
	// Progress, if positive, writes a progress line to ProgressTo every
	// interval (JSON objects when ProgressJSON).
	Progress     time.Duration
	ProgressTo   io.Writer
	ProgressJSON bool
}

// Timing says when frames are due. The zero value is not valid: start
// from DefaultTiming.
type Timing struct {
	Speed     float64 // as recorded, this many times faster
	PPS       float64 // if > 0: this many frames per second, ignoring recorded gaps
	TopSpeed  bool    // as fast as possible
	Realtime  bool    // outputs that do not follow the clock follow it all the same
	Loops     int     // passes over the trace; 0: until Limit, Duration or the context ends
	LoopDelay time.Duration
	Limit     int64         // frames; 0: no limit
	Duration  time.Duration // replay time; 0: no limit
	Batch     int           // most frames per send; paced replays batch only frames already due
	Spin      time.Duration // spin instead of sleeping for the last part of each wait
	RT        int           // SCHED_FIFO priority of the sending thread (1-99); 0: off
}

// DefaultTiming is the recorded timing, one pass.
func DefaultTiming() Timing {
	return Timing{Speed: 1, Loops: 1, Batch: 64, Spin: pace.DefaultSpin}
}

// Validate reports the first option that is out of range (Run checks
// them too, and needs an Output).
func (o *Options) Validate() error {
	t := &o.Timing
	switch {
	case len(o.Inputs) == 0:
		return errors.New("no input")
	case len(o.Inputs) > 1 && slices.Contains(o.Inputs, "-"):
		return errors.New("standard input cannot be merged with other inputs")
	case o.ReadAhead < 0:
		return fmt.Errorf("ReadAhead %d cannot be negative", o.ReadAhead)
	case t.Speed <= 0:
		return errors.New("Timing.Speed must be positive")
	case t.PPS < 0:
		return errors.New("Timing.PPS must be positive")
	case t.PPS > 0 && t.TopSpeed:
		return errors.New("Timing.PPS and Timing.TopSpeed are exclusive")
	case t.Batch < 1 || t.Batch > 1024:
		return errors.New("Timing.Batch must be 1..1024")
	case t.Loops < 0 || t.Limit < 0 || t.Duration < 0 || t.LoopDelay < 0:
		return errors.New("Timing.Loops, Limit, Duration and LoopDelay cannot be negative")
	case t.RT < 0 || t.RT > 99:
		return errors.New("Timing.RT is a SCHED_FIFO priority, 1..99 (0: off)")
	case t.Realtime && o.Output != nil && o.Output.FollowsClock():
		return errors.New("Timing.Realtime is for file outputs: this output always follows the clock")
	}
	return notInterfaces(o.Inputs)
}

// notInterfaces refuses an input that is no file but a network interface's
// name: tcpreplay's -i is the interface to send out of, a replay's input
// the trace.
func notInterfaces(inputs []string) error {
	for _, in := range inputs {
		if _, err := os.Stat(in); !errors.Is(err, fs.ErrNotExist) || strings.ContainsRune(in, '/') {
			continue
		}
		if _, err := os.Stat(filepath.Join("/sys/class/net", in)); err == nil {
			return fmt.Errorf("input %s: no such file, but a network interface: the inputs are traces (tcpreplay's -i is the interface to send out of); the replay goes to netlink consumers or through the module", in)
		}
	}
	return nil
}

// Code returns the exit code for an error of Run: ExitNoConsumer,
// ExitInterrupted, ExitInput or ExitError.
func Code(err error) int {
	var ie *InputError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrNoConsumer):
		return ExitNoConsumer
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ie):
		return ExitInput
	}
	return ExitError
}

// InputError is an input that cannot be opened or is not a trace.
type InputError struct {
	Name string
	Err  error
}

func (e *InputError) Error() string { return fmt.Sprintf("input %s: %v", e.Name, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

// Run replays o.Inputs into o.Output and returns the summary; it returns
// an error instead when the replay could not start (an input that cannot
// be opened, an output that cannot start: Code maps it to an exit code).
// Ending ctx interrupts the replay (Summary.ExitCode ExitInterrupted),
// also while the output starts (waits for its consumers).
// Run closes o.Output.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Output == nil {
		return nil, errors.New("no output")
	}
	src, closeIn, err := openInputs(o.Inputs, o.Stdin)
	if err != nil {
		o.Output.Close()
		return nil, err
	}
	defer closeIn()
	// Everything that can fail is tried before the output binds its port,
	// so that no consumer registers with a replay that cannot run.
	t := timing{Timing: o.Timing, wait: o.Output.FollowsClock() || o.Timing.Realtime}
	if t.RT > 0 && t.wait && !t.TopSpeed {
		if err := checkRealtime(t.RT); err != nil {
			o.Output.Close()
			return nil, fmt.Errorf("Timing.RT %d: SCHED_FIFO: %w", t.RT, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := new(atomic.Bool)
	context.AfterFunc(ctx, func() { stop.Store(true) })

	in := newInput(src, o.Filter, int(min(o.ReadAhead, math.MaxInt)), t.Loops != 1, o.Output.KernelOnly())
	defer in.close()
	r := newReplayer(t, in, o.Output, stop)
	if err := o.Output.Start(ctx); err != nil {
		o.Output.Close()
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			// Interrupted before the clock started (waiting for consumers,
			// for a FIFO's reader): a replay that sent nothing, summed up.
			return r.summary(o.Inputs, nil, nil, true), nil
		}
		return nil, err
	}
	in.waitPrimed()
	done := make(chan struct{})
	if o.Progress > 0 && o.ProgressTo != nil {
		go progress(o.ProgressTo, o.ProgressJSON, o.Progress, r, o.Output, done)
	}
	sendErr := r.run()
	close(done)
	stopped := stop.Load()
	in.close()
	closeErr := o.Output.Close()
	return r.summary(o.Inputs, sendErr, closeErr, stopped), nil
}

// openInputs opens the traces and returns their frames in order (merged
// by timestamp when more than one; a rotated set, set.go, is one) and a
// function that closes them all.
func openInputs(names []string, stdin io.Reader) (frameSource, func(), error) {
	if len(names) == 1 && (names[0] == "-" || !isSet(names[0])) {
		rd, closeRd, err := openTrace(names[0], stdin)
		if err != nil {
			return nil, nil, &InputError{Name: names[0], Err: err}
		}
		return rd, closeRd, nil
	}
	ins := make([]mergeInput, len(names))
	for i, name := range names {
		in, err := newMergeInput(name)
		if err != nil {
			return nil, nil, &InputError{Name: name, Err: err}
		}
		ins[i] = in
	}
	m := newMerger(ins)
	return m, m.Close, nil
}

// checkRealtime tries SCHED_FIFO at prio on a thread of its own and puts
// it back, so that a replay that may not use it says so before any
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

// CheckNotInput refuses an output file that is one of the inputs (the
// same device and inode, as cp and cat check): creating it would truncate
// the input before it is read. out "-" is stdout. An output that does not
// exist yet, or that is not a regular file (a pipe, a terminal,
// /dev/null), is fine.
func CheckNotInput(inputs []string, stdin io.Reader, out string, stdout io.Writer) error {
	outName, ofi := "output file "+out, os.FileInfo(nil)
	if out == "-" {
		outName = "standard output"
		ofi = stat(stdout)
	} else {
		ofi, _ = os.Stat(out)
	}
	if out != "-" {
		if err := checkNotInSet(inputs, out); err != nil {
			return err
		}
	}
	if ofi == nil || !ofi.Mode().IsRegular() {
		return nil
	}
	for _, name := range inputs {
		var ifi os.FileInfo
		if name == "-" {
			ifi = stat(stdin)
		} else {
			ifi, _ = os.Stat(name)
		}
		if ifi != nil && os.SameFile(ifi, ofi) {
			return fmt.Errorf("input %s and %s are the same file: writing it would destroy the input", name, outName)
		}
	}
	return nil
}

// checkNotInSet refuses an output file that would be one of a rotated
// set's files (inside an input directory, or matching an input glob),
// whether it exists yet or not.
func checkNotInSet(inputs []string, out string) error {
	for _, name := range inputs {
		if name == "-" || !isSet(name) {
			continue
		}
		inDir := false
		if st, err := os.Stat(name); err == nil && st.IsDir() {
			d1, _ := filepath.Abs(name)
			d2, _ := filepath.Abs(filepath.Dir(out))
			inDir = d1 == d2
		}
		if m, _ := filepath.Match(name, out); inDir || m {
			return fmt.Errorf("output file %s would be part of the input set %s: writing it would change the input", out, name)
		}
	}
	return nil
}

func stat(v any) os.FileInfo {
	if f, ok := v.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			return fi
		}
	}
	return nil
}
