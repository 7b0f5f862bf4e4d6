package main

import (
	"context"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// output is where replayed frames go. Each -to value is one implementation
// in its own file (out_*.go); adding one (such as -to icmp) means writing
// the type and one case in newOutput.
type output interface {
	// start prepares the output before the clock starts (the netlink
	// output waits for its consumers here).
	start(ctx context.Context) error
	// send delivers frames in order; ts[i] is frame i's timestamp in the
	// replayed schedule (ns since the Unix epoch). It must not keep the
	// frames: their Data is reused after it returns.
	send(frames []pcapnl.Frame, ts []int64) error
	// realtime reports whether the output follows the clock by default
	// (netlink) or writes as fast as it can with re-timed timestamps
	// (files; -realtime makes them follow the clock).
	realtime() bool
	// skipKernel reports whether frames not known to travel kernel→user
	// are left out.
	skipKernel() bool
	// consumers returns per-consumer counters, or nil.
	consumers() []imp2.ConsumerStats
	// close flushes and releases the output; the summary comes after it.
	close() error
}
