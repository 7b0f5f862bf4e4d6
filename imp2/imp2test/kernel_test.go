//go:build linux

package imp2test_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/internal/childproc"
	"github.com/imp2/imp2/pcapnl"
)

func newKernel(t *testing.T, cfg imp2test.Config) *imp2test.Kernel {
	t.Helper()
	k, err := imp2test.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func dial(t *testing.T, cfg imp2.Config) *imp2.Conn {
	t.Helper()
	c, err := imp2.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seqs reads what reached c until nothing comes for 100 ms.
func seqs(c *imp2.Conn) (got []uint32) {
	for {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		b, err := c.Receive()
		if err != nil {
			return got
		}
		h, _ := imp2.ParseHeader(b)
		got = append(got, h.Seq)
	}
}

// TestPerConsumerNumbering: each consumer's events are numbered from 1 at
// its registration, as the module numbers them.
func TestPerConsumerNumbering(t *testing.T) {
	k := newKernel(t, imp2test.Config{AllowUnprivileged: true})
	a := dial(t, k.ConsumerConfig())
	if _, err := k.SendEvents(imp2test.Event(1), imp2test.Event(2), imp2test.Event(3)); err != nil {
		t.Fatal(err)
	}
	b := dial(t, k.ConsumerConfig())
	if _, err := k.SendEvents(imp2test.Event(4), imp2test.Event(5)); err != nil {
		t.Fatal(err)
	}
	if got := seqs(a); !slices.Equal(got, []uint32{1, 2, 3, 4, 5}) {
		t.Errorf("first consumer got numbers %v, want 1-5", got)
	}
	if got := seqs(b); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("second consumer got numbers %v, want 1-2", got)
	}
}

// TestAnswers: the module's refusals. One consumer more than MaxConsumers
// is refused with ENOSPC, IMP2_CLOSE of a port never registered with
// ENOENT, and, without AllowUnprivileged, a consumer without
// CAP_NET_ADMIN with EPERM.
func TestAnswers(t *testing.T) {
	k := newKernel(t, imp2test.Config{MaxConsumers: 1, AllowUnprivileged: true})
	dial(t, k.ConsumerConfig())
	if _, err := imp2.Dial(k.ConsumerConfig()); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("second consumer of at most 1: %v, want ENOSPC", err)
	}
	if got := k.Refused(); got.ENOSPC != 1 {
		t.Errorf("Refused %+v, want one ENOSPC", got)
	}

	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW, imp2.UserSockFamily)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	req := imp2.AppendControl(nil, imp2.TypeClose, imp2.FlagRequest|imp2.FlagAck, 9, 0)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Pid: k.PortID()}); err != nil {
		t.Fatal(err)
	}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Sec: 5})
	ack := make([]byte, 256)
	n, _, err := syscall.Recvfrom(fd, ack, 0)
	if err != nil || n < imp2.HeaderLen+4 {
		t.Fatalf("no answer to IMP2_CLOSE: %d bytes, %v", n, err)
	}
	if h, _ := imp2.ParseHeader(ack[:n]); h.Type != syscall.NLMSG_ERROR || h.Seq != 9 || int32(binary.NativeEndian.Uint32(ack[imp2.HeaderLen:])) != -int32(syscall.ENOENT) {
		t.Errorf("answer to IMP2_CLOSE of an unregistered port: % x; want NLMSG_ERROR seq 9 -ENOENT", ack[:n])
	}

	if os.Geteuid() != 0 {
		t.Skip("EPERM: needs root to run a consumer as another user")
	}
	strict := newKernel(t, imp2test.Config{})
	cmd := childproc.Command(t, dialEnv, strconv.FormatUint(uint64(strict.PortID()), 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "operation not permitted") || strict.Refused().EPERM != 1 {
		t.Errorf("consumer as nobody: %q, refused %+v; want EPERM", out, strict.Refused())
	}
}

// dialEnv makes the test binary a consumer that dials the Kernel at the
// given port and prints the outcome (TestAnswers runs it as nobody).
const dialEnv = "IMP2TEST_DIAL"

func init() {
	childproc.Dispatch(dialEnv, func(arg string) {
		port, _ := strconv.ParseUint(arg, 10, 32)
		c, err := imp2.Dial(imp2.Config{Family: imp2.UserSockFamily, Peer: uint32(port), Ack: true})
		if err == nil {
			c.Close()
		}
		fmt.Println("dial:", err)
	})
}

// TestReplay: a synthetic trace with a gap reaches the consumer byte for
// byte, its numbering as recorded (the gap included); frames of the
// recorder's conversation in the trace are not sent.
func TestReplay(t *testing.T) {
	k := newKernel(t, imp2test.Config{AllowUnprivileged: true})
	c := dial(t, k.ConsumerConfig())
	frames := slices.Delete(imp2test.Events(10, 20), 5, 8) // 15-17 lost when recorded
	reg := pcapnl.Frame{Time: imp2test.TraceStart, Direction: pcapnl.ToKernel, Family: imp2.DefaultFamily,
		Data: imp2.AppendControl(nil, imp2.TypeRegister, 0, 1, 77)}
	var trace bytes.Buffer
	if err := imp2test.WriteTrace(&trace, append([]pcapnl.Frame{reg}, frames...)); err != nil {
		t.Fatal(err)
	}
	n, err := k.Replay(&trace)
	if err != nil || n != len(frames) {
		t.Fatalf("Replay: %d frames, %v; want %d", n, err, len(frames))
	}
	for i, f := range frames {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := c.Receive()
		if err != nil || !bytes.Equal(b, f.Data) {
			t.Fatalf("frame %d: %x, %v; want %x", i, b, err, f.Data)
		}
	}
	if rest := seqs(c); len(rest) != 0 {
		t.Errorf("after the events the consumer got %v", rest)
	}
}
