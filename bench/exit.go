package bench

import (
	"errors"

	"github.com/imp2/imp2/internal/compare"
)

// The exit statuses of the imp2-bench commands by outcome (ExitCode);
// compare, ab and gate exit with the verdict's (compare.ExitStatus).
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2 // an *OptionError (and a wrong command line)
	// ExitInterrupted is the status of a run stopped by SIGINT or SIGTERM
	// (128+SIGINT, as shells and imp2-replay report it), whether or not
	// it had completed samples to write.
	ExitInterrupted = 130
)

// ExitCode is the exit status for an error of Run, AB, Gate, Matrix,
// CompareFiles and the rest: unusable input compare's (2), an option out
// of range ExitUsage, an interruption before anything completed
// ExitInterrupted, anything else ExitFailure; nil is ExitOK.
func ExitCode(err error) int {
	var oe *OptionError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, compare.ErrUnusable):
		code, _ := compare.ExitStatus(nil, err)
		return code
	case errors.As(err, &oe):
		return ExitUsage
	case errors.Is(err, ErrNothingCompleted):
		return ExitInterrupted
	}
	return ExitFailure
}
