//go:build linux

package imp2

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// floodEnv makes the test binary a flood sender (see TestMain), so that a
// benchmark can have its sender in another process, as the module is.
const floodEnv = "IMP2_TEST_FLOOD_TO"

func TestMain(m *testing.M) {
	if to := os.Getenv(floodEnv); to != "" {
		port, err := strconv.ParseUint(to, 10, 32)
		if err != nil {
			os.Exit(2)
		}
		flood(uint32(port), nil)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// flood sends 48-byte events to port from a blocking socket, 64 per
// sendmmsg, as fast as the receiver drains them (a blocking user-space
// netlink sender waits for room, so nothing is dropped), until the
// receiver goes away or stop is set.
func flood(port uint32, stop *atomic.Bool) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, UserSockFamily)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	const batch = 64
	frame := eventFrame(1)
	to := unix.RawSockaddrNetlink{Family: unix.AF_NETLINK, Pid: port}
	var iov unix.Iovec
	iov.Base = &frame[0]
	iov.SetLen(len(frame))
	hdrs := make([]unix.Mmsghdr, batch)
	for i := range hdrs {
		hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&to))
		hdrs[i].Hdr.Namelen = unix.SizeofSockaddrNetlink
		hdrs[i].Hdr.Iov = &iov
		hdrs[i].Hdr.SetIovlen(1)
	}
	for stop == nil || !stop.Load() {
		_, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), batch, 0, 0, 0)
		if e != 0 && e != unix.EINTR {
			return e
		}
	}
	return nil
}

// startFlood starts a flood towards port in a goroutine or a child process
// and returns a function that waits for it to end (after the receiver
// closed).
func startFlood(b *testing.B, port uint32, process bool) (wait func()) {
	if !process {
		done := make(chan struct{})
		go func() { flood(port, nil); close(done) }()
		return func() { <-done }
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), floodEnv+"="+strconv.FormatUint(uint64(port), 10))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return func() { cmd.Wait() }
}

const benchRcvBuf = 4 << 20

// BenchmarkReceive compares receive paths over NETLINK_USERSOCK with a
// flooding sender; one op is one 48-byte event. See the Conn doc comment
// for the figures.
func BenchmarkReceive(b *testing.B) {
	for _, sender := range []string{"goroutine", "process"} {
		process := sender == "process"
		b.Run("sender="+sender+"/recvmmsg-64", func(b *testing.B) { benchConn(b, process, 64) })
		b.Run("sender="+sender+"/recvmmsg-1", func(b *testing.B) { benchConn(b, process, 1) })
		b.Run("sender="+sender+"/mdlayher", func(b *testing.B) { benchMdlayher(b, process, 0) })
		b.Run("sender="+sender+"/mdlayher-bufsize", func(b *testing.B) { benchMdlayher(b, process, 4096) })
	}
}

func benchConn(b *testing.B, process bool, batch int) {
	// The register message goes to an idle socket: the flood needs none.
	idle, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	defer idle.Close()
	c, err := Dial(Config{Family: UserSockFamily, Peer: idle.port, RcvBuf: benchRcvBuf})
	if err != nil {
		b.Fatal(err)
	}
	wait := startFlood(b, c.PortID(), process)
	msgs := newMsgs(batch, 256)
	c.ReadBatch(msgs) // the flood is running
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.StopTimer()
	c.Close()
	wait()
}

func benchMdlayher(b *testing.B, process bool, bufSize int) {
	nc, err := netlink.Dial(UserSockFamily, &netlink.Config{MessageBufferSize: bufSize})
	if err != nil {
		b.Fatal(err)
	}
	rc, err := nc.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, benchRcvBuf) })
	wait := startFlood(b, nc.PID(), process)
	nc.Receive()
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; {
		msgs, err := nc.Receive()
		if err != nil {
			b.Fatal(err)
		}
		got += len(msgs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.StopTimer()
	nc.Close()
	wait()
}

// BenchmarkShortRead is the cost of a read that finds one datagram
// queued, into a batch of 128 buffers: what a receive loop pays per read
// behind a sender slower than itself, the cost record.Options.Coalesce
// spreads over more frames. One op is one send and one read;
// the send is the sender's share, on this goroutine. Setting and
// releasing all 128 iovecs around every read was 120 ns of it (1,132-1,145
// against 1,003-1,025 ns/op, 3 runs each).
func BenchmarkShortRead(b *testing.B) {
	peer, err := openSock(UserSockFamily, 0, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	c, err := Dial(Config{Family: UserSockFamily, Peer: peer.port, RcvBuf: benchRcvBuf, Blocking: true, Connect: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msgs := newMsgs(128, 256)
	frame := eventFrame(1)
	to := unix.RawSockaddrNetlink{Family: unix.AF_NETLINK, Pid: c.PortID()}
	var fd uintptr
	peer.Control(func(f int) error { fd = uintptr(f); return nil })
	b.ReportAllocs()
	for b.Loop() {
		// A raw sendto: unix.Sendto would allocate the address each time.
		if _, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&to)), unix.SizeofSockaddrNetlink); e != 0 {
			b.Fatal(e)
		}
		if n, err := c.ReadBatch(msgs); n != 1 || err != nil {
			b.Fatalf("read %d, %v; want the one datagram sent", n, err)
		}
	}
}

// BenchmarkServerSendBatch measures the Server's send path into one
// consumer drained by a goroutine; one op is one frame offered. EAGAIN
// counts frames the consumer's full queue refused.
func BenchmarkServerSendBatch(b *testing.B) {
	s, cs := pair(b, 1, Config{RcvBuf: benchRcvBuf})
	c := cs[0]
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		msgs := newMsgs(64, 256)
		for !stop.Load() {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.ReadBatch(msgs); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
	batch := frames(1, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += len(batch) {
		if _, err := s.SendBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(st.Events)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(st.EAGAIN)/float64(st.Events), "eagain/frame")
	stop.Store(true)
	<-done
}
