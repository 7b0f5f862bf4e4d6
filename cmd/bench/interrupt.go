package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// exitInterrupted is the status of a run stopped by SIGINT or SIGTERM
// (128+SIGINT, as shells and imp2-replay report it), whether or not it
// had completed samples to write.
const exitInterrupted = 130

// errNothingCompleted ends a run interrupted before its first sample
// completed: there is nothing to write.
var errNothingCompleted = errors.New("interrupted before the first sample completed: nothing written")

// interrupts turns the first SIGINT or SIGTERM into the cancellation of
// ctx: the sweep drops the sample in progress, stops and writes what
// completed. The second cancels hard: what cannot stop at a sample
// boundary by itself (the VM, whose guest was asked to) is then stopped
// at once.
type interrupts struct {
	ctx, hard context.Context
	stop      func()
}

// signalError is ctx's cause: which signal stopped the run.
type signalError struct{ sig os.Signal }

func (e *signalError) Error() string { return "interrupted by " + e.sig.String() }

func notifyInterrupts() *interrupts {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(context.Background())
	hard, cancelHard := context.WithCancel(context.Background())
	quit := make(chan struct{})
	go func() {
		for first := true; ; first = false {
			select {
			case s := <-ch:
				if first {
					cancel(&signalError{s})
				} else {
					cancelHard()
				}
			case <-quit:
				return
			}
		}
	}()
	return &interrupts{ctx: ctx, hard: hard, stop: func() {
		signal.Stop(ch)
		close(quit)
		cancel(nil)
		cancelHard()
	}}
}

// signalName is the signal that cancelled ctx ("SIGINT", "SIGTERM"), or
// "" when no signal did.
func signalName(ctx context.Context) string {
	var se *signalError
	if !errors.As(context.Cause(ctx), &se) {
		return ""
	}
	if se.sig == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}
