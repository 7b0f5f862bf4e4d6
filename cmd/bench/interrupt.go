package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/imp2/imp2/bench"
)

// exitInterrupted is the status of a run stopped by SIGINT or SIGTERM
// (128+SIGINT, as shells and imp2-replay report it), whether or not it
// had completed samples to write.
const exitInterrupted = 130

// notifyInterrupts turns the first SIGINT or SIGTERM into the
// cancellation of the returned context, with the signal as its cause: the
// sweep drops the sample in progress, stops and writes what completed.
// The second closes o.Hard: what cannot stop at a sample boundary by
// itself (the VM, whose guest was asked to) is then stopped at once.
func notifyInterrupts(o *bench.Options) (context.Context, func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(context.Background())
	hard, quit := make(chan struct{}), make(chan struct{})
	o.Hard = hard
	go func() {
		for first := true; ; first = false {
			select {
			case s := <-ch:
				if !first {
					close(hard)
					return
				}
				name := "SIGINT"
				if s == syscall.SIGTERM {
					name = "SIGTERM"
				}
				cancel(&bench.Interrupt{Signal: name})
			case <-quit:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(quit)
		cancel(nil)
	}
}
