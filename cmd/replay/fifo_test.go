//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fifo makes a FIFO in a temporary directory.
func fifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startCmd starts imp2-replay with args; wait returns its exit code and
// stderr, failing the test if it has not ended within limit; cmd.Stdout
// is a *bytes.Buffer.
func startCmd(t *testing.T, args ...string) (*exec.Cmd, func(limit time.Duration) (int, string)) {
	t.Helper()
	cmd := exec.Command(replayBin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, func(limit time.Duration) (int, string) {
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), se.String()
			} else if err != nil {
				t.Fatal(err)
			}
			return 0, se.String()
		case <-time.After(limit):
			cmd.Process.Kill()
			<-done
			t.Fatalf("imp2-replay %s still running after %v: %s", strings.Join(args, " "), limit, se.String())
			return 0, ""
		}
	}
}

// TestFIFOReaderExits: an endless replay into a FIFO whose reader reads a
// little and exits ends with EPIPE (exit 1). The output was opened O_RDWR,
// so the replay held a reader itself and blocked for ever on the full pipe.
func TestFIFOReaderExits(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 50})
	ff := fifo(t)
	for _, to := range []string{"text", "pcapng"} {
		t.Run(to, func(t *testing.T) {
			_, wait := startCmd(t, in, "-to", to, "-loop", "0", "-o", ff)
			rd, err := os.Open(ff) // waits for the writer
			if err != nil {
				t.Fatal(err)
			}
			rd.Read(make([]byte, 100))
			rd.Close()
			code, stderr := wait(20 * time.Second)
			if code != exitError || !strings.Contains(stderr, "broken pipe") {
				t.Errorf("exit %d, stderr %q; want %d and broken pipe", code, stderr, exitError)
			}
		})
	}
}

// TestFIFOInterrupt: SIGINT ends a replay blocked on a FIFO, whether its
// reader stopped reading (a full pipe) or none ever came (the open
// waits), with exit 130.
func TestFIFOInterrupt(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 50})
	t.Run("full pipe", func(t *testing.T) {
		ff := fifo(t)
		cmd, wait := startCmd(t, in, "-to", "text", "-loop", "0", "-o", ff)
		rd, err := os.Open(ff)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()        // open, never read
		time.Sleep(time.Second) // the pipe fills
		cmd.Process.Signal(os.Interrupt)
		if code, stderr := wait(10 * time.Second); code != exitInterrupted {
			t.Errorf("exit %d, want %d: %s", code, exitInterrupted, stderr)
		}
	})
	t.Run("no reader", func(t *testing.T) {
		ff := fifo(t)
		cmd, wait := startCmd(t, in, "-to", "text", "-o", ff)
		time.Sleep(time.Second)
		cmd.Process.Signal(os.Interrupt)
		if code, stderr := wait(10 * time.Second); code != exitInterrupted {
			t.Errorf("exit %d, want %d: %s", code, exitInterrupted, stderr)
		}
	})
}
