package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	family       int
	bind, dest   uint32
	netns        string
	wait         time.Duration
	minConsumers int
	linger       time.Duration
	stop         *atomic.Bool
	log          func(format string, args ...any)

	srv   *imp2.Server
	bufs  [][]byte
	final []imp2.ConsumerStats // at close
	stats imp2.Stats           // at close
}

func (o *netlinkOut) start(ctx context.Context) error {
	cfg := imp2.ServerConfig{Family: o.family, PortID: o.bind, Dest: o.dest}
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
		if o.minConsumers <= 1 {
			return nil
		}
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
		have := len(srv.Consumers())
		return fmt.Errorf("%w: %d of %d consumer(s) registered with netlink family %d port %d within -wait %v",
			errNoConsumer, have, o.minConsumers, o.family, srv.PortID(), o.wait)
	}
	return nil
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
	// Errors other than EAGAIN and ECONNREFUSED are counted by the Server
	// (OtherErr) and reported in the summary; like the module, the replay
	// goes on.
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
	for end := time.Now().Add(o.linger); time.Now().Before(end) && !o.stop.Load(); {
		active := 0
		for _, c := range o.srv.Consumers() {
			if c.Active && !c.Fixed {
				active++
			}
		}
		if active == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	o.final, o.stats = o.srv.Consumers(), o.srv.Stats()
	if o.final == nil {
		o.final = []imp2.ConsumerStats{}
	}
	return o.srv.Close()
}
