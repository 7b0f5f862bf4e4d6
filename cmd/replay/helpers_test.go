//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/replay"
)

// replayBin is imp2-replay built once for the tests that need it in its own
// process (timing, exit codes, signals).
var replayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imp2-replay-test")
	if err != nil {
		panic(err)
	}
	replayBin = filepath.Join(dir, "imp2-replay")
	if out, err := exec.Command("go", "build", "-o", replayBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// eventFrame is an extended imp2 event as the module sends it.
func eventFrame(seq uint32) []byte {
	return imp2.AppendEventMessage(nil, seq, imp2.Event{
		Src: netip.AddrFrom4([4]byte{10, 0, byte(seq >> 8), byte(seq)}), Dest: netip.MustParseAddr("10.9.9.9"),
		Extended: true, TimeNs: uint64(seq) * 1000, ICMPType: 8, ICMPSeq: uint16(seq), Flags: imp2.EventFlagICMP, IPLen: 84,
	})
}

// traceSpec describes a synthetic trace.
type traceSpec struct {
	n        int
	gap      func(i int) time.Duration // before frame i (i ≥ 1)
	control  bool                      // add the recorder's IMP2_U_PID (user→kernel) first and IMP2_CLOSE last
	compress pcapnl.Compression
}

const t0 = int64(1_700_000_000_000_000_000)

// writeTrace writes a trace and returns its path and the kernel→user
// frames with their times.
func writeTrace(t testing.TB, s traceSpec) (string, [][]byte, []int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapnl.NewWriter(f, pcapnl.WriterOptions{Compression: s.compress, Family: 31})
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var times []int64
	tm := t0
	write := func(fr pcapnl.Frame) {
		if err := w.WriteFrame(&fr); err != nil {
			t.Fatal(err)
		}
	}
	if s.control {
		write(pcapnl.Frame{Time: tm - 1000, Direction: pcapnl.ToKernel, Family: 31,
			Data: imp2.AppendControl(nil, imp2.TypeRegister, 0, 0, 1234)})
	}
	for i := range s.n {
		if i > 0 && s.gap != nil {
			tm += int64(s.gap(i))
		}
		d := eventFrame(uint32(i + 1))
		frames, times = append(frames, d), append(times, tm)
		write(pcapnl.Frame{Time: tm, Direction: pcapnl.ToUser, Family: 31, Data: d})
	}
	if s.control {
		write(pcapnl.Frame{Time: tm + 1000, Direction: pcapnl.ToKernel, Family: 31,
			Data: imp2.AppendControl(nil, imp2.TypeClose, 0, 0, 1234)})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, frames, times
}

// readTrace returns every frame of a trace (Data copied) and the error
// that ended it (nil at a clean end).
func readTrace(t testing.TB, r *pcapnl.Reader) ([]pcapnl.Frame, error) {
	t.Helper()
	var out []pcapnl.Frame
	for {
		fr, err := r.Next()
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return out, err
		}
		fr.Data = bytes.Clone(fr.Data)
		out = append(out, fr)
	}
}

// port returns a port id unlikely to be taken by another test or process.
var portSeq atomic.Uint32

func testPort() uint32 {
	return uint32(os.Getpid())<<8 ^ 0x40000000 + portSeq.Add(1)
}

// result of a replay process.
type replayRun struct {
	code    int
	stdout  string
	stderr  string
	summary summary
}

// startReplay starts imp2-replay with args (plus -json); wait returns its
// result with the JSON summary parsed from stdout (or stderr for file
// outputs to stdout).
func startReplay(t testing.TB, args ...string) func() replayRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	args = append(args, "-json")
	if os.Geteuid() != 0 {
		args = append(args, "-allow-unprivileged") // the tests' consumers lack CAP_NET_ADMIN too
	}
	if !slices.Contains(args, "-linger") && !slices.Contains(args, "-to") {
		args = append(args, "-linger", "0") // the tests' consumers close at cleanup
	}
	cmd := exec.CommandContext(ctx, replayBin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() replayRun {
		defer cancel()
		err := cmd.Wait()
		r := replayRun{stdout: so.String(), stderr: se.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{r.stdout, r.stderr} {
			lines := strings.Split(strings.TrimSpace(s), "\n")
			last := lines[len(lines)-1]
			if strings.HasPrefix(last, `{"type":"summary"`) {
				if err := json.Unmarshal([]byte(last), &r.summary); err != nil {
					t.Fatalf("summary %q: %v", last, err)
				}
			}
		}
		return r
	}
}

// dialWhenUp registers a consumer with the replay's port, retrying until
// the replay has bound it.
func dialWhenUp(t testing.TB, port uint32, rcvbuf int) *imp2.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := imp2.Dial(imp2.Config{Family: imp2.UserSockFamily, Peer: port, RcvBuf: rcvbuf, Ack: true, AckTimeout: 200 * time.Millisecond})
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("registering with port %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// received is one datagram a consumer got, with the time it got it.
type received struct {
	data []byte
	at   time.Time
}

// drain reads c until want datagrams arrived or the timeout passes.
func drain(t testing.TB, c *imp2.Conn, want int, timeout time.Duration) []received {
	t.Helper()
	msgs := make([]imp2.Message, 64)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 4096)
	}
	var out []received
	end := time.Now().Add(timeout)
	c.SetReadDeadline(end)
	for len(out) < want {
		n, err := c.ReadBatch(msgs)
		at := time.Now()
		if err != nil {
			if os.IsTimeout(err) {
				break
			}
			t.Fatalf("ReadBatch after %d: %v", len(out), err)
		}
		for _, m := range msgs[:n] {
			out = append(out, received{bytes.Clone(m.Data()), at})
		}
	}
	return out
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// summary is the JSON summary, as the tests read it.
type summary struct {
	replay.Summary
	replay.NetlinkReport
}

type consumerSummary = replay.ConsumerSummary

const (
	exitError       = replay.ExitError
	exitUsage       = replay.ExitUsage
	exitInput       = replay.ExitInput
	exitNoConsumer  = replay.ExitNoConsumer
	exitInterrupted = replay.ExitInterrupted
)
