package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit status; see the package documentation.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitLost  = 3
	exitStart = 4
)

// dialError turns a registration failure into a plain sentence.
func dialError(cfg *config, err error) error {
	who := fmt.Sprintf("port %d of netlink family %d", cfg.peer, cfg.family)
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT):
		return fmt.Errorf("the imp2 module is not loaded for family %d", cfg.family)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		if cfg.peer == 0 {
			return errors.New("permission denied: registering with the imp2 module needs CAP_NET_ADMIN (run as root, or load the module with allow_unprivileged=1)")
		}
		return fmt.Errorf("permission denied: %s refused the registration", who)
	case errors.Is(err, unix.ECONNREFUSED):
		return fmt.Errorf("nothing is listening on %s (is the producer running? -peer names its port)", who)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s did not acknowledge the registration (use -ack=false for peers that never do, such as the original module)", who)
	}
	return fmt.Errorf("registering with %s: %w", who, err)
}

// outputError describes a failure to create or write the trace.
func outputError(cfg *config, err error, midway bool) error {
	if errors.Is(err, errExists) {
		return fmt.Errorf("-o %s: the file exists; add -force to overwrite it", cfg.out)
	}
	name := cfg.out
	if name == "-" {
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
		return fmt.Errorf("cannot create %s: %v", name, err)
	}
	return fmt.Errorf("writing %s: %v; the trace is valid up to its last flush (frames older than -flush %v before the error)", name, err, cfg.flush)
}
