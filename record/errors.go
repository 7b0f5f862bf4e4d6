package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Run's errors: each outcome but a complete, lossless recording has its
// type, so that a caller maps them without reading messages.
//
//   - *OptionError: a setting is invalid; nothing was opened.
//   - ErrExists (as an *ExistsError naming the file): Path is an existing
//     file, or a rotated set has files of an earlier recording, and Force
//     is off; nothing was opened or registered.
//   - *StartError: the recording could not start (the output could not be
//     created, the registration failed); nothing is left behind.
//   - *MidwayError: it failed midway (a write error such as a full disk, a
//     receive error); the trace is valid up to its last flush and the
//     Summary says what it holds.
//   - *LossError: complete, but this recording lost frames or has gaps it
//     cannot explain without the peer's counters.
var ErrExists = errors.New("record: the trace file exists (Options.Force overwrites it)")

// ExistsError is ErrExists for one file: the trace, or a file of an
// earlier recording into the same rotated set (errors.Is(err, ErrExists)
// holds).
type ExistsError struct {
	Path string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("record: %s exists (Options.Force overwrites it)", e.Path)
}

func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// StartError is a recording that could not start.
type StartError struct {
	Err error // a sentence for the user, wrapping the cause
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// MidwayError is a recording that failed after it started: Errs are the
// write and receive errors, first to last.
type MidwayError struct {
	Errs []error
}

func (e *MidwayError) Error() string   { return errors.Join(e.Errs...).Error() }
func (e *MidwayError) Unwrap() []error { return e.Errs }

// LossError is a complete recording that lost frames (Drops.Lost) or has
// gaps it cannot explain (Drops.Unexplained), which may be its own.
type LossError struct {
	Lost, Unexplained uint64
}

func (e *LossError) Error() string {
	return fmt.Sprintf("record: %d frames lost, %d gaps unexplained", e.Lost, e.Unexplained)
}

// dialError turns a registration failure into a plain sentence.
func dialError(o *Options, err error) error {
	who := fmt.Sprintf("port %d of netlink family %d", o.Peer, o.Family)
	switch {
	case errors.Is(err, syscall.EPROTONOSUPPORT):
		err = fmt.Errorf("the imp2 module is not loaded for family %d", o.Family)
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		if o.Peer == 0 {
			err = errors.New("permission denied: registering with the imp2 module needs CAP_NET_ADMIN (run as root, or load the module with allow_unprivileged=1)")
		} else {
			err = fmt.Errorf("permission denied: %s refused the registration", who)
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		err = fmt.Errorf("nothing is listening on %s (is the producer running on that port?)", who)
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("%s did not acknowledge the registration (leave the acknowledgement off for peers that never send one, such as the original module)", who)
	default:
		err = fmt.Errorf("registering with %s: %w", who, err)
	}
	return &StartError{err}
}

// outputError describes a failure to create or write the trace.
func outputError(o *Options, err error, midway bool) error {
	name := o.Path
	if name == "-" || name == "" {
		name = "stdout"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	if !midway {
		return &StartError{fmt.Errorf("cannot create %s: %v", name, err)}
	}
	return fmt.Errorf("writing %s: %v; the trace is valid up to its last flush (frames older than the flush interval, %v, before the error)", name, err, o.Flush)
}
