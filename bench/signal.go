package bench

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// NotifyInterrupts turns the first SIGINT or SIGTERM into the
// cancellation of the returned context, with an Interrupt naming the
// signal as its cause: a sweep drops the sample in progress, stops and
// returns what completed. The second closes hard (for Options.Hard): what
// cannot stop at a sample boundary by itself (the VM, whose guest was
// asked to) is then stopped at once. stop ends the notification.
func NotifyInterrupts() (ctx context.Context, hard <-chan struct{}, stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(context.Background())
	stopNow, quit := make(chan struct{}), make(chan struct{})
	go func() {
		for first := true; ; first = false {
			select {
			case s := <-ch:
				if !first {
					close(stopNow)
					return
				}
				name := "SIGINT"
				if s == syscall.SIGTERM {
					name = "SIGTERM"
				}
				cancel(&Interrupt{Signal: name})
			case <-quit:
				return
			}
		}
	}()
	return ctx, stopNow, func() {
		signal.Stop(ch)
		close(quit)
		cancel(nil)
	}
}
