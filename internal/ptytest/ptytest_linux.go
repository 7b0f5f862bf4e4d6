//go:build linux

// Package ptytest gives tests a pseudo-terminal, to check what a program
// does when its output is a terminal (the progress bars show only there;
// imp2-record and imp2-replay refuse to write a binary trace to one):
// /dev/ptmx and its /dev/pts/N, opened with three ioctls rather than a
// package for them.
package ptytest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Open opens a pseudo-terminal pair (/dev/ptmx, unlocked, and its
// /dev/pts/N), without a package for it: three ioctls.
func Open(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	fd := int(ptm.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	// Raw output: no \n -> \r\n mapping to get in the way of the check.
	if tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS); err == nil {
		tio.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(int(pts.Fd()), unix.TCSETS, tio)
	}
	return ptm, pts
}

// Read reads what the terminal shows until the slave side is closed
// (EIO) or nothing comes for a while.
func Read(t *testing.T, ptm *os.File) string {
	t.Helper()
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		ptm.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := ptm.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			if !errors.Is(err, syscall.EIO) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Logf("reading the pty: %v", err)
			}
			return out.String()
		}
	}
}
