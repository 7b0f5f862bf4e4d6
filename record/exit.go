package record

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// The exit status of a recording by its outcome (ExitCode), as
// imp2-record exits.
const (
	ExitOK    = 0 // complete, nothing lost by this recording
	ExitError = 1 // failed midway (*MidwayError and the rest)
	ExitUsage = 2 // *OptionError, ErrExists
	ExitLost  = 3 // *LossError: complete, but frames lost or gaps unexplained
	ExitStart = 4 // *StartError: could not start
)

// ExitCode is the exit status for Run's error (nil: ExitOK).
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case as[*OptionError](err), errors.Is(err, ErrExists):
		return ExitUsage
	case as[*StartError](err):
		return ExitStart
	case as[*LossError](err):
		return ExitLost
	}
	return ExitError
}

func as[T error](err error) bool {
	var t T
	return errors.As(err, &t)
}

// The stop reasons (Summary.Stop) of StopOnSignals.
const (
	StopSIGINT  = "SIGINT"
	StopSIGTERM = "SIGTERM"
)

// StopOnSignals stops the recording at the first SIGINT or SIGTERM and
// calls cancel (which should end Run's context, cutting the wait for the
// peer's counters short) at the second. SIGPIPE is caught too: a closed
// output must be a write error (and IMP2_CLOSE), not a silent death. It
// returns the function that stops listening.
func (r *Recorder) StopOnSignals(cancel func()) (stop func()) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGPIPE {
				continue
			}
			reason := map[os.Signal]string{syscall.SIGINT: StopSIGINT, syscall.SIGTERM: StopSIGTERM}[sig]
			if !r.Stop(reason) {
				cancel()
			}
		}
	}()
	return func() { signal.Stop(sigs) }
}
