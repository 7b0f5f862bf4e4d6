package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/record"
)

// The exit statuses (record.ExitCode's) and stop reasons the tests expect.
const (
	exitOK, exitError, exitUsage, exitLost, exitStart = record.ExitOK, record.ExitError, record.ExitUsage, record.ExitLost, record.ExitStart

	stopSIGINT, stopSIGTERM = record.StopSIGINT, record.StopSIGTERM
)

// recordBin is the imp2-record binary the tests run: signals, exit codes
// and stdout are the product, so the tests exec the real thing. replayBin
// is imp2-replay, the user-space peer that replays committed traces into
// it.
var recordBin, replayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imp2-record-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	recordBin = filepath.Join(dir, "imp2-record")
	replayBin = filepath.Join(dir, "imp2-replay")
	for bin, pkg := range map[string]string{recordBin: ".", replayBin: "../replay"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// recording is one imp2-record process.
type recording struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

func startRecord(t *testing.T, args ...string) *recording {
	t.Helper()
	return startRecordTo(t, nil, args...)
}

// startRecordTo starts imp2-record with stdout going to out, or to the
// recording's buffer if out is nil.
func startRecordTo(t *testing.T, out io.Writer, args ...string) *recording {
	t.Helper()
	r := &recording{cmd: exec.Command(recordBin, args...), done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = out, &r.stderr
	if out == nil {
		r.cmd.Stdout = &r.stdout
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// wait waits for the process to end and returns its exit status.
func (r *recording) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("imp2-record did not end; stderr:\n%s", r.stderr.String())
	}
	return r.code
}

// summary is imp2-record's -json summary, the engine's.
type summary = record.Summary

func (r *recording) summary(t *testing.T) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal(r.stdout.Bytes(), &s); err != nil {
		t.Fatalf("-json summary: %v\nstdout: %s\nstderr: %s", err, r.stdout.String(), r.stderr.String())
	}
	return s
}

// producer is an imp2.Server on NETLINK_USERSOCK that numbers its events.
type producer struct {
	*imp2.Server
	seq    uint32
	frames [][]byte
}

func newProducer(t *testing.T) *producer {
	t.Helper()
	s, err := imp2.Listen(imp2.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &producer{Server: s}
}

func (p *producer) args(more ...string) []string {
	return append([]string{"-family", "2", "-peer", fmt.Sprint(p.PortID())}, more...)
}

func (p *producer) waitConsumers(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitConsumers(ctx, n); err != nil {
		t.Fatalf("waiting for %d consumers: %v", n, err)
	}
}

// send sends n numbered events in batches of 64 and returns how many were
// queued to the consumers.
func (p *producer) send(t *testing.T, n int) int {
	t.Helper()
	if p.frames == nil {
		p.frames = make([][]byte, 64)
	}
	total := 0
	for n > 0 {
		k := min(n, 64)
		for i := range k {
			p.seq++
			p.frames[i] = imp2.AppendEventMessage(p.frames[i][:0], p.seq, imp2test.Event(p.seq))
		}
		sent, err := p.SendBatch(p.frames[:k])
		if err != nil {
			t.Fatal(err)
		}
		total += sent
		n -= k
	}
	return total
}

// readTrace reads a whole trace; it fails the test on anything but a clean
// end unless truncated is allowed.
func readTrace(t *testing.T, r io.Reader, allowTruncated bool) (frames []pcapnl.Frame, rd *pcapnl.Reader, err error) {
	t.Helper()
	rd, err = pcapnl.NewReader(r)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	t.Cleanup(func() { rd.Close() })
	for {
		f, err := rd.Next()
		if err == io.EOF {
			return frames, rd, nil
		}
		if err != nil {
			if allowTruncated && errors.Is(err, pcapnl.ErrTruncated) {
				return frames, rd, err
			}
			t.Fatalf("reading the trace after %d frames: %v", len(frames), err)
		}
		f.Data = bytes.Clone(f.Data)
		frames = append(frames, f)
	}
}

func readTraceFile(t *testing.T, path string, allowTruncated bool) ([]pcapnl.Frame, *pcapnl.Reader, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return readTrace(t, f, allowTruncated)
}

func header(t *testing.T, f pcapnl.Frame) imp2.Header {
	t.Helper()
	h, err := f.Header()
	if err != nil {
		t.Fatalf("frame header: %v", err)
	}
	return h
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
