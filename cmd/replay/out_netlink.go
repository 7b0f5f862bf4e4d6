package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// errNoConsumer is returned by start when -wait passes without enough
// registered consumers (exit code exitNoConsumer).
var errNoConsumer = errors.New("no consumer registered")

// netlinkOut is the kernel side of imp2 on a real netlink socket, built on
// imp2.Server: consumers register with IMP2_U_PID and leave with
// IMP2_CLOSE or when their socket goes away; every kernel→user frame is
// sent, byte for byte, to each of them with MSG_DONTWAIT. A full queue
// loses the frame for that consumer and counts EAGAIN (never retried).
type netlinkOut struct {
	family            int
	bind, dest        uint32
	netns             string
	wait              time.Duration
	minConsumers      int // registered consumers to wait for (-dest is not one)
	maxConsumers      int
	allowUnprivileged bool
	linger            time.Duration
	stop              *atomic.Bool
	log               func(format string, args ...any)

	srv      *imp2.Server
	bufs     [][]byte
	final    []imp2.ConsumerStats // at close
	departed imp2.DepartedStats   // at close
	refused  imp2.RefusedStats    // at close
}

func (o *netlinkOut) start(ctx context.Context) error {
	cfg := imp2.ServerConfig{Family: o.family, PortID: o.bind, Dest: o.dest,
		MaxConsumers: o.maxConsumers, AllowUnprivileged: o.allowUnprivileged}
	if o.netns != "" {
		f, err := os.Open(o.netns)
		if err != nil {
			return fmt.Errorf("-netns: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	srv, err := imp2.Listen(cfg)
	if err != nil {
		return fmt.Errorf("netlink family %d port %d: %w", o.family, o.bind, err)
	}
	o.srv = srv
	if o.dest != 0 {
		o.log("netlink family %d port %d: sending to fixed port %d", o.family, srv.PortID(), o.dest)
	}
	if o.minConsumers == 0 {
		return nil
	}
	o.log("netlink family %d port %d: waiting for %d consumer(s) to register (IMP2_U_PID to port %d)%s",
		o.family, srv.PortID(), o.minConsumers, srv.PortID(), waitNote(o.wait))
	wctx := ctx
	if o.wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, o.wait)
		defer cancel()
	}
	if err := srv.WaitConsumers(wctx, o.minConsumers); err != nil {
		o.linger = 0
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %d of %d consumer(s) registered with netlink family %d port %d within -wait %v%s",
			errNoConsumer, srv.Registered(), o.minConsumers, o.family, srv.PortID(), o.wait, o.notCounted())
	}
	return nil
}

// notCounted says which registrations did not count: consumers that left
// (IMP2_CLOSE, or their socket closed) and refused ones.
func (o *netlinkOut) notCounted() string {
	var parts []string
	left := o.srv.Departed().Consumers
	for _, c := range o.srv.Consumers() {
		if !c.Active {
			left++
		}
	}
	if left > 0 {
		parts = append(parts, fmt.Sprintf("%d registered and left", left))
	}
	r := o.srv.Refused()
	if r.EPERM > 0 {
		parts = append(parts, fmt.Sprintf("%d refused without CAP_NET_ADMIN (-allow-unprivileged admits them)", r.EPERM))
	}
	if r.ENOSPC > 0 {
		parts = append(parts, fmt.Sprintf("%d refused over -max-consumers %d", r.ENOSPC, o.maxConsumers))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func waitNote(d time.Duration) string {
	if d <= 0 {
		return ", no time limit"
	}
	return fmt.Sprintf(", up to %v", d)
}

func (o *netlinkOut) send(frames []pcapnl.Frame, _ []int64) error {
	if cap(o.bufs) < len(frames) {
		o.bufs = make([][]byte, len(frames))
	}
	b := o.bufs[:len(frames)]
	for i := range frames {
		b[i] = frames[i].Data
	}
	// Every frame a consumer does not take is counted by the Server, by
	// error class, and reported in the summary; like the module, the
	// replay goes on.
	_, _ = o.srv.SendBatch(b)
	clear(b)
	return nil
}

func (o *netlinkOut) realtime() bool   { return true }
func (o *netlinkOut) skipKernel() bool { return true }

func (o *netlinkOut) consumers() []imp2.ConsumerStats {
	if o.srv == nil || o.final != nil {
		return o.final
	}
	return o.srv.Consumers()
}

// close first lingers: it keeps serving control messages until every
// registered consumer has unregistered or -linger has passed, so that a
// consumer such as imp2-record can still ask for the counters
// (IMP2_GET_STATS) and close cleanly after the last frame.
func (o *netlinkOut) close() error {
	if o.srv == nil {
		return nil
	}
	for end := time.Now().Add(o.linger); time.Now().Before(end) && !o.stop.Load() && o.srv.Registered() > 0; {
		time.Sleep(10 * time.Millisecond)
	}
	o.final, o.departed, o.refused = o.srv.Consumers(), o.srv.Departed(), o.srv.Refused()
	if o.final == nil {
		o.final = []imp2.ConsumerStats{}
	}
	return o.srv.Close()
}

// undelivered says why nothing reached anyone, or returns "" when
// something did or when nobody was expected: frames were offered, a
// destination was named (-dest, or -min-consumers registered consumers),
// and not one frame was queued to any consumer.
func (o *netlinkOut) undelivered(offered int64) string {
	if offered == 0 || (o.dest == 0 && o.minConsumers == 0) {
		return ""
	}
	total := o.departed.SendCounts
	for _, c := range o.final {
		total.Add(c.SendCounts)
	}
	if total.Sent > 0 {
		return ""
	}
	var why []string
	for _, c := range o.final {
		if c.Offered() == 0 {
			continue
		}
		who := fmt.Sprintf("port %d", c.PortID)
		if c.Fixed {
			who = "-dest " + who
		}
		why = append(why, who+": "+undeliveredReason(c.SendCounts, c.Fixed))
	}
	if d := o.departed; d.Offered() > 0 {
		why = append(why, fmt.Sprintf("%d earlier consumer(s): %s", d.Consumers, undeliveredReason(d.SendCounts, false)))
	}
	if len(why) == 0 {
		return fmt.Sprintf("nothing delivered: no consumer was registered for any of the %d frame(s)", offered)
	}
	return "nothing delivered: " + strings.Join(why, "; ")
}

func undeliveredReason(c imp2.SendCounts, fixed bool) string {
	n := c.Offered()
	switch n {
	case c.ECONNREFUSED:
		if fixed {
			return fmt.Sprintf("connection refused for all %d frame(s): nobody bound there", n)
		}
		return "connection refused: its socket was closed without IMP2_CLOSE"
	case c.EAGAIN:
		return fmt.Sprintf("queue full (EAGAIN) for all %d frame(s): nobody reads it", n)
	}
	return fmt.Sprintf("none of %d frame(s) delivered%s", n, countsOf(c).failures())
}
