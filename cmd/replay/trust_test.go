//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/childproc"
)

// consumerEnv makes the test binary a consumer of the replay at the given
// port (see runConsumerChild), so that a test can run one as another user.
const consumerEnv = "IMP2_REPLAY_TEST_CONSUMER_OF"

func init() {
	childproc.Dispatch(consumerEnv, func(arg string) {
		port, err := strconv.ParseUint(arg, 10, 32)
		if err != nil {
			os.Exit(2)
		}
		runConsumerChild(uint32(port))
	})
}

// runConsumerChild registers (with NLM_F_ACK, retrying while the replay
// has not bound its port) and prints the outcome and the events received.
func runConsumerChild(port uint32) {
	var c *imp2.Conn
	var err error
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		c, err = imp2.Dial(imp2.Config{Family: imp2.UserSockFamily, Peer: port, Ack: true, AckTimeout: 200 * time.Millisecond})
		if !errors.Is(err, unix.ECONNREFUSED) {
			break
		}
	}
	if err != nil {
		var errno syscall.Errno
		errors.As(err, &errno)
		fmt.Printf("refused %d\n", int(errno))
		return
	}
	defer c.Close()
	msgs := make([]imp2.Message, 64)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 256)
	}
	events := 0
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			break
		}
		events += n
	}
	fmt.Printf("events %d\n", events)
}

// asNobody returns a command running the test binary as a consumer of
// port, as uid/gid 65534.
func asNobody(t *testing.T, port uint32) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a consumer as another user needs root")
	}
	cmd := childproc.Command(t, consumerEnv, itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// Item 3: a fixed destination nobody is bound to takes nothing. Every
// frame's ECONNREFUSED is in the summary, text and JSON, and the run fails
// (exit 4) saying why.
func TestDestNobodyBound(t *testing.T) {
	const n = 50
	in, _, _ := writeTrace(t, traceSpec{n: n})
	port := itoa(testPort()) // bound by nobody
	res := startReplay(t, "-i", in, "-dest", port, "-topspeed")()
	want := fmt.Sprintf("fixed destination port %s: connection refused for all %d frame(s): nobody bound there", port, n)
	if res.code != exitNoConsumer || !strings.Contains(res.stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitNoConsumer, want)
	}
	s := res.summary
	if len(s.Consumers) != 1 || s.Consumers[0].ECONNREFUSED != n || s.Consumers[0].Sent != 0 ||
		s.Totals == nil || s.Totals.ECONNREFUSED != n || s.SendErrors != n || s.ExitCode != exitNoConsumer {
		t.Errorf("JSON summary: consumers %+v totals %+v send_errors %d exit %d", s.Consumers, s.Totals, s.SendErrors, s.ExitCode)
	}
	out, err := exec.Command(replayBin, "-i", in, "-dest", port, "-topspeed").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitNoConsumer {
		t.Errorf("text run: %v", err)
	}
	for _, w := range []string{fmt.Sprintf("delivered 0, EAGAIN 0, ECONNREFUSED %d", n), fmt.Sprintf("port %s (active, fixed): sent 0, ECONNREFUSED %d", port, n), want} {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("text summary lacks %q:\n%s", w, out)
		}
	}
}

// Item 4: -min-consumers counts consumers that are still there. One that
// registered and closed its socket without IMP2_CLOSE does not count
// towards starting the replay, and the message says it left.
func TestMinConsumersCountsLive(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 10})
	port := testPort()
	wait := startReplay(t, "-i", in, "-bind", itoa(port), "-wait", "1s", "-min-consumers", "2")
	unix.Close(rawRegister(t, port)) // gone, no IMP2_CLOSE
	dialWhenUp(t, port, 0)
	res := wait()
	want := fmt.Sprintf("1 of 2 consumer(s) registered with netlink family 2 port %d within the wait of 1s (1 registered and left)", port)
	if res.code != exitNoConsumer || !strings.Contains(res.stderr, want) || res.summary.FramesSent != 0 {
		t.Errorf("exit %d, sent %d, stderr %q; want %d, 0 and %q", res.code, res.summary.FramesSent, res.stderr, exitNoConsumer, want)
	}
}

// rawRegister registers a bare socket with the replay at port, retrying
// until the replay has bound it, and returns the socket.
func rawRegister(t *testing.T, port uint32) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, imp2.UserSockFamily)
	if err != nil {
		t.Fatal(err)
	}
	// A port of its own, so that a later consumer's autobind cannot take
	// it over once it is closed.
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: testPort()}); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	msg := imp2.AppendControl(nil, imp2.TypeRegister, imp2.FlagRequest|imp2.FlagAck, 1, 0)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.ECONNREFUSED) || time.Now().After(end) {
			t.Fatalf("registering with port %d: %v", port, err)
		}
	}
	buf := make([]byte, 256)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil || n < imp2.HeaderLen+4 || binary.NativeEndian.Uint32(buf[imp2.HeaderLen:]) != 0 {
		t.Fatalf("registration ack: %v % x", err, buf[:max(n, 0)])
	}
	return fd
}

// Item 8e: a consumer running as nobody is refused (EPERM) and gets
// nothing; -allow-unprivileged admits it. Registration churn leaves a
// summary that lists the last consumers and sums the others.
func TestAdmissionAndChurn(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 200})
	t.Run("refused", func(t *testing.T) {
		port := testPort()
		child := asNobody(t, port)
		wait := startReplay(t, "-i", in, "-bind", itoa(port), "-wait", "2s")
		out, err := child.CombinedOutput()
		res := wait()
		if err != nil || strings.TrimSpace(string(out)) != fmt.Sprintf("refused %d", int(unix.EPERM)) {
			t.Errorf("consumer as nobody: %v: %q, want refused with EPERM", err, out)
		}
		want := "(1 refused without CAP_NET_ADMIN (allowing unprivileged consumers admits them))"
		if res.code != exitNoConsumer || !strings.Contains(res.stderr, want) {
			t.Errorf("replay: exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitNoConsumer, want)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		port := testPort()
		child := asNobody(t, port)
		wait := startReplay(t, "-i", in, "-bind", itoa(port), "-allow-unprivileged", "-pps", "1000", "-linger", "5s")
		out, err := child.CombinedOutput()
		res := wait()
		if err != nil || strings.TrimSpace(string(out)) != "events 200" || res.code != 0 {
			t.Errorf("consumer as nobody with -allow-unprivileged: %v: %q; replay exit %d: %s", err, out, res.code, res.stderr)
		}
		if cs := res.summary.Consumers; len(cs) != 1 || cs[0].UID != 65534 || cs[0].Sent != 200 {
			t.Errorf("consumers %+v, want one of uid 65534 sent 200", cs)
		}
	})
	t.Run("churn", func(t *testing.T) {
		const churn = 3000
		port := testPort()
		wait := startReplay(t, "-i", in, "-bind", itoa(port), "-min-consumers", "2", "-topspeed")
		dialWhenUp(t, port, 0).Close()
		for i := range churn - 1 {
			c, err := imp2.Dial(imp2.Config{Family: imp2.UserSockFamily, Peer: port, Ack: true})
			if err != nil {
				t.Fatalf("registration %d: %v", i, err)
			}
			c.Close()
		}
		dialWhenUp(t, port, 4<<20)
		dialWhenUp(t, port, 4<<20)
		res := wait()
		line := res.stdout[strings.LastIndex(strings.TrimSpace(res.stdout), "\n")+1:]
		s := res.summary
		t.Logf("summary of %d bytes: %d consumers listed, departed %+v", len(line), len(s.Consumers), s.Departed)
		if res.code != 0 || len(s.Consumers) != imp2.KeptDeparted+2 || s.Departed == nil ||
			s.Departed.Consumers != churn-imp2.KeptDeparted || s.Totals.Sent != 400 {
			t.Errorf("exit %d: %d consumers listed, departed %+v, totals %+v; want 0, %d, %d departed summed, 400 sent",
				res.code, len(s.Consumers), s.Departed, s.Totals, imp2.KeptDeparted+2, churn-imp2.KeptDeparted)
		}
		if len(line) > 16<<10 {
			t.Errorf("summary of %d bytes after %d registrations", len(line), churn)
		}
	})
}

// Item 8a: an output that is an input is refused (exit 2) before anything
// is created, and the input is left as it was: by name, through a hard
// link, and as standard output.
func TestOutputIsInput(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 1000})
	sum := func() [32]byte {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	link := filepath.Join(t.TempDir(), "link.pcapng")
	if err := os.Link(in, link); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{in, link} {
		res := startReplay(t, "-i", in, "-to", "pcapng", "-o", out)()
		want := fmt.Sprintf("input %s and output file %s are the same file", in, out)
		if res.code != exitUsage || !strings.Contains(res.stderr, want) {
			t.Errorf("-o %s: exit %d, stderr %q; want %d and %q", out, res.code, res.stderr, exitUsage, want)
		}
	}
	f, err := os.OpenFile(in, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(replayBin, "-i", in, "-to", "text")
	cmd.Stdout = f
	var se bytes.Buffer
	cmd.Stderr = &se
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(se.String(), "and standard output are the same file") {
		t.Errorf("stdout appending to the input: %v, %q", err, se.String())
	}
	if sum() != before {
		t.Fatal("the input was changed")
	}
	// An output that does not exist yet, or another file, is fine.
	if res := startReplay(t, "-i", in, "-to", "pcapng", "-o", filepath.Join(t.TempDir(), "new.pcapng"))(); res.code != 0 {
		t.Errorf("new output: exit %d: %s", res.code, res.stderr)
	}
}

// writeBigTrace writes a zstd pcap of n frames of size bytes each (valid
// netlink headers, zero payload) and returns its path.
func writeBigTrace(t *testing.T, n, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.pcap.zst")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr, 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 16<<20)
	le.PutUint32(hdr[20:], 253) // LINKTYPE_NETLINK
	zw.Write(hdr)
	rec := make([]byte, 16+16+size)
	binary.BigEndian.PutUint16(rec[16:], 0) // PACKET_HOST: kernel→user
	binary.BigEndian.PutUint16(rec[18:], 824)
	binary.BigEndian.PutUint16(rec[30:], imp2.UserSockFamily)
	for i := range n {
		le.PutUint32(rec[0:], uint32(1_700_000_000+i))
		le.PutUint32(rec[8:], uint32(16+size))
		le.PutUint32(rec[12:], uint32(16+size))
		imp2.PutHeader(rec[32:], imp2.Header{Len: uint32(size), Type: imp2.TypeEvent, Seq: uint32(i + 1)})
		if _, err := zw.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Item 8b: read-ahead is bounded in bytes, not chunks: 40 frames of 8 MiB
// (320 MiB decoded) through -readahead 16M keep the process's peak RSS
// within the bound plus a few frames, and a frame larger than the whole
// read-ahead still goes through.
func TestReadAheadBoundedInBytes(t *testing.T) {
	const n, size = 40, 8 << 20
	if testing.Short() {
		t.Skip("decodes 640 MiB")
	}
	in := writeBigTrace(t, n, size)
	for _, tc := range []struct {
		readahead string
		bound     int64 // peak RSS, bytes
	}{
		// What is held ahead, the frame being written, the one the
		// reader decodes into, each twice for the GC's headroom, and
		// 64 MiB for the runtime and the zstd decoder. Bounded in
		// chunks, 16M held all 40 frames: 320 MiB and more.
		{"16M", 2*(16<<20+2*size) + 64<<20},
		{"1M", 2*(1<<20+2*size) + 64<<20}, // every frame is larger than the read-ahead
	} {
		ra, _ := strconv.ParseInt(strings.TrimSuffix(tc.readahead, "M"), 10, 64)
		cmd := exec.Command(replayBin, "-i", in, "-to", "text", "-o", os.DevNull, "-readahead", strconv.FormatInt(ra<<20, 10), "-json")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("-readahead %s: %v\n%s", tc.readahead, err, out)
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
		t.Logf("-readahead %s: peak RSS %d MiB (bound %d MiB)", tc.readahead, rss>>20, tc.bound>>20)
		if !bytes.Contains(out, []byte(fmt.Sprintf(`"frames_sent":%d`, n))) {
			t.Errorf("-readahead %s: not every frame written: %s", tc.readahead, out)
		}
		if rss > tc.bound {
			t.Errorf("-readahead %s: peak RSS %d MiB, more than %d MiB", tc.readahead, rss>>20, tc.bound>>20)
		}
	}
}
