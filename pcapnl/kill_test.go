package pcapnl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	killEnvPath = "PCAPNL_KILL_HELPER"
	killEnvMode = "PCAPNL_KILL_MODE"
	killFirst   = 30000
)

func TestMain(m *testing.M) {
	if p := os.Getenv(killEnvPath); p != "" {
		killHelper(p, os.Getenv(killEnvMode))
		os.Exit(3) // not reached: the parent kills us
	}
	os.Exit(m.Run())
}

// killHelper runs in a child process: it writes killFirst frames, says so
// on stdout and then, in mode "idle", waits for the time-based flush and
// the SIGKILL, or, in mode "busy", flushes explicitly and keeps writing
// frames until it is killed.
func killHelper(path, mode string) {
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	frames := floodTrace(100000, 21)
	opts := WriterOptions{FlushInterval: 100 * time.Millisecond}
	mode, queued := strings.CutSuffix(mode, "-queue")
	if queued {
		opts.Queue = 1 << 20
	}
	w, err := NewWriter(f, opts)
	if err != nil {
		panic(err)
	}
	for i := range killFirst {
		w.WriteFrame(&frames[i])
	}
	if mode == "busy" {
		w.Flush()
	}
	fmt.Println("wrote", killFirst)
	if mode == "idle" {
		select {}
	}
	for i := killFirst; ; i++ {
		w.WriteFrame(&frames[i%len(frames)])
	}
}

func TestKilledWriter(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	frames := floodTrace(100000, 21)
	for _, mode := range []string{"idle", "busy", "idle-queue", "busy-queue"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "killed.pcapng.zst")
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), killEnvPath+"="+path, killEnvMode+"="+mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "wrote") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper said %q: %v", line, err)
			}
			if strings.HasPrefix(mode, "idle") {
				time.Sleep(400 * time.Millisecond) // > FlushInterval: the ticker must have flushed
			} else {
				time.Sleep(50 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			err = cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("helper did not die of SIGKILL: %v", err)
			}

			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := readAll(t, bytes.NewReader(data))
			t.Logf("%d bytes, %d frames, then: %v", len(data), len(got), err)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("error %v, want ErrTruncated", err)
			}
			if len(got) < killFirst {
				t.Fatalf("%d frames, want at least the %d flushed", len(got), killFirst)
			}
			if strings.HasPrefix(mode, "idle") && len(got) != killFirst {
				t.Fatalf("%d frames, want exactly %d", len(got), killFirst)
			}
			for i := range got {
				sameFrame(t, i, got[i], frames[i%len(frames)])
			}

			// tshark: the same frames, and no complaint, because every zstd
			// block ends on a pcapng block boundary.
			if tshark := needToolNoSkip(t, "tshark"); tshark != "" {
				cmd := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "frame.number")
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				o, err := cmd.Output()
				n := bytes.Count(o, []byte("\n"))
				t.Logf("tshark: %d frames, err %v, stderr %q", n, err, stderr.String())
				if err != nil || n != len(got) {
					t.Errorf("tshark read %d frames (err %v), reader %d", n, err, len(got))
				}
			}
			if zstd := needToolNoSkip(t, "zstd"); zstd != "" {
				o, err := exec.Command(zstd, "-dc", path).Output()
				t.Logf("zstd -d: %d bytes, %v", len(o), err)
				// On a truncated stream the zstd CLI may hold back the tail of
				// its last output buffer (seen: 344 bytes short of our
				// decoder), so ask for a valid prefix with every frame that
				// was flushed before the kill.
				plain, _, rerr := readAll(t, bytes.NewReader(o))
				if len(plain) > len(got) || len(plain) < killFirst {
					t.Errorf("zstd -d output holds %d frames (%v), want between the %d flushed and our %d", len(plain), rerr, killFirst, len(got))
				}
				if strings.HasPrefix(mode, "idle") && len(plain) != len(got) {
					t.Errorf("zstd -d output holds %d frames, want %d: the file ends on a flush", len(plain), len(got))
				}
			}
		})
	}
}

// needToolNoSkip returns the tool's path, "" when it is missing outside CI,
// and fails in CI.
func needToolNoSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found and CI is set", name)
	}
	t.Logf("%s not found; part of the test skipped", name)
	return ""
}
