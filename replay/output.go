package replay

import (
	"context"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// Output is where replayed frames go: NewNetlink, NewText, NewPcapng, or
// the ICMP regeneration of package replay/icmp. Run calls Start, Begin,
// Send (any number of times), Close and Report, in that order, from one
// goroutine; Consumers may be called from another while Send runs.
type Output interface {
	// Start prepares the output before the clock starts (the netlink
	// output binds and waits for its consumers here). ctx ends when the
	// replay is interrupted; an output may keep it to stop lingering.
	Start(ctx context.Context) error
	// Begin is called once, as the replay clock starts.
	Begin(c Clock)
	// Send delivers frames in order; ts[i] is frame i's timestamp in the
	// replayed schedule (ns since the Unix epoch). It must not keep the
	// frames: their Data is reused after it returns.
	Send(frames []pcapnl.Frame, ts []int64) error
	// FollowsClock reports whether the output follows the clock by
	// default (netlink, icmp) or writes as fast as it can with re-timed
	// timestamps (files, unless Timing.Realtime).
	FollowsClock() bool
	// KernelOnly reports whether frames not known to travel kernel→user
	// are left out (counted in Summary.FramesSkipped).
	KernelOnly() bool
	// Consumers returns per-consumer counters for progress lines, or nil.
	Consumers() []imp2.ConsumerStats
	// Close flushes and releases the output.
	Close() error
	// Report is the output's part of the summary, after Close; nil when it
	// has none.
	Report() Report
	// Name is what the output is, for Summary.Output: what a file output
	// writes ("pcap zstd"), not what it was asked for.
	Name() string
}

// Clock is the replay clock: Now is nanoseconds since the replay started,
// the time every deadline is an offset from.
type Clock interface {
	Now() int64
}

// Report is an output's part of the summary. Its JSON encoding must be an
// object: its fields join the summary's object.
type Report interface {
	// Undelivered counts the frames the output did not deliver: those
	// refused with EAGAIN, and all the others.
	Undelivered() (eagain, other uint64)
	// Delivered counts what the output delivered: netlink, the datagrams
	// a consumer's socket took (a frame offered to two consumers counts
	// twice); icmp, the packets the kernel took.
	Delivered() uint64
	// Problem says why the replay failed in the output's terms and with
	// which exit code (ExitNoConsumer, ExitVerify, …), given the frames
	// sent; "" when it did not.
	Problem(sent int64) (string, int)
	// AppendText appends the output's lines of the text summary.
	AppendText(b []byte) []byte
}
