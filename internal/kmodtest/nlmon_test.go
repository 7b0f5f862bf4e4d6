package kmodtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
	"golang.org/x/sys/unix"
)

// nlmonCapture captures everything nlmon0 taps into a classic pcap, the
// way tcpdump -i nlmon0 -w does: libpcap opens a SOCK_DGRAM packet socket
// for an ARPHRD_NETLINK device ("cooked" mode), writes link type 253 and
// puts before each packet a 16-byte header made of the sockaddr_ll it was
// received with (pkttype, hatype and halen in network order, the address,
// sll_protocol as is: the netlink unit in network order). Only the
// timestamps differ: the time of recvfrom, not the kernel's.
type nlmonCapture struct {
	path string
	fd   int
	stop atomic.Bool
	done chan struct{}
	err  error
}

func startNlmon(t *testing.T) *nlmonCapture {
	t.Helper()
	run(t, "ip", "link", "add", "nlmon0", "type", "nlmon")
	t.Cleanup(func() { exec.Command("ip", "link", "del", "nlmon0").Run() })
	run(t, "ip", "link", "set", "nlmon0", "up")
	ifi, err := net.InterfaceByName("nlmon0")
	if err != nil {
		t.Fatal(err)
	}
	all := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, all)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50_000})
	c := &nlmonCapture{path: filepath.Join(t.TempDir(), "nlmon0.pcap"), fd: fd, done: make(chan struct{})}
	f, err := os.Create(c.path)
	if err != nil {
		t.Fatal(err)
	}
	go c.loop(f)
	t.Cleanup(func() { c.finish() })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *nlmonCapture) loop(f *os.File) {
	defer close(c.done)
	defer unix.Close(c.fd)
	const snaplen = 262144
	w := bufio.NewWriter(f)
	le := binary.LittleEndian
	hdr := le.AppendUint32(nil, 0xa1b2c3d4) // microseconds
	hdr = le.AppendUint16(hdr, 2)
	hdr = le.AppendUint16(hdr, 4)
	hdr = le.AppendUint64(hdr, 0) // thiszone, sigfigs
	hdr = le.AppendUint32(hdr, snaplen)
	hdr = le.AppendUint32(hdr, pcapnl.LinkTypeNetlink)
	w.Write(hdr)
	buf := make([]byte, snaplen)
	for !c.stop.Load() {
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.err = err
			break
		}
		sa, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			c.err = fmt.Errorf("recvfrom: address %T", from)
			break
		}
		now := time.Now()
		capLen := min(n, snaplen)
		var rec [16 + pcapnl.PseudoHeaderLen]byte
		le.PutUint32(rec[0:], uint32(now.Unix()))
		le.PutUint32(rec[4:], uint32(now.Nanosecond()/1000))
		le.PutUint32(rec[8:], uint32(capLen+pcapnl.PseudoHeaderLen))
		le.PutUint32(rec[12:], uint32(n+pcapnl.PseudoHeaderLen))
		p := rec[16:]
		binary.BigEndian.PutUint16(p[0:], uint16(sa.Pkttype))
		binary.BigEndian.PutUint16(p[2:], sa.Hatype)
		binary.BigEndian.PutUint16(p[4:], uint16(sa.Halen))
		copy(p[6:14], sa.Addr[:min(int(sa.Halen), 8)])
		binary.NativeEndian.PutUint16(p[14:], sa.Protocol) // as stored: network order
		w.Write(rec[:])
		w.Write(buf[:capLen])
	}
	if err := w.Flush(); err != nil && c.err == nil {
		c.err = err
	}
	if err := f.Close(); err != nil && c.err == nil {
		c.err = err
	}
}

// finish stops the capture and returns the file's path.
func (c *nlmonCapture) finish() (string, error) {
	c.stop.Store(true)
	<-c.done
	return c.path, c.err
}

// waitBound waits until a netlink socket of family holds port id port.
func waitBound(t *testing.T, family int, port uint32) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(string(procNet(t, "netlink")), "\n")[1:] {
			if f := strings.Fields(l); len(f) > 2 && f[1] == fmt.Sprint(family) && f[2] == fmt.Sprint(port) {
				return
			}
		}
	}
	t.Fatalf("nothing bound port %d of netlink family %d within 20 s", port, family)
}

// converse replays the trace in into imp2-record over NETLINK_USERSOCK:
// imp2-replay plays the kernel side on port, imp2-record registers with
// it, takes count events, asks for the counters and unregisters. It
// returns imp2-record's trace.
func converse(t *testing.T, in string, port uint32, count int, replayArgs ...string) string {
	t.Helper()
	fam := fmt.Sprint(imp2.UserSockFamily)
	rep := exec.Command(guestReplay, append([]string{"-i", in, "-family", fam, "-bind", fmt.Sprint(port),
		"-wait", "60s", "-linger", "60s", "-pps", "2000"}, replayArgs...)...)
	var repOut bytes.Buffer
	rep.Stdout, rep.Stderr = &repOut, &repOut
	if err := rep.Start(); err != nil {
		t.Fatal(err)
	}
	defer rep.Process.Kill()
	waitBound(t, imp2.UserSockFamily, port)
	out := filepath.Join(t.TempDir(), "rec.pcapng.zst")
	rec := exec.Command(guestRecord, "-family", fam, "-peer", fmt.Sprint(port), "-count", fmt.Sprint(count),
		"-duration", "60s", "-q", "-o", out)
	if b, err := rec.CombinedOutput(); err != nil {
		t.Fatalf("imp2-record: %v\n%s\nimp2-replay: %s", err, b, repOut.String())
	}
	if err := rep.Wait(); err != nil {
		t.Fatalf("imp2-replay: %v\n%s", err, repOut.String())
	}
	return out
}

// traceFrames reads a trace, imp2 on NETLINK_USERSOCK.
func traceFrames(t *testing.T, path string) []pcapnl.Frame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapnl.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetIMP2Families(imp2.UserSockFamily)
	var frames []pcapnl.Frame
	for {
		fr, err := r.Next()
		if err == io.EOF {
			return frames
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		fr.Data = bytes.Clone(fr.Data)
		frames = append(frames, fr)
	}
}

// events returns the IMP2_K_MSG messages of the imp2 frames on
// NETLINK_USERSOCK that travel kernel→user.
func events(frames []pcapnl.Frame) [][]byte {
	var evs [][]byte
	for _, f := range frames {
		if h, err := f.Header(); err == nil && f.Family == imp2.UserSockFamily && f.Direction == pcapnl.ToUser && h.Type == imp2.TypeEvent {
			evs = append(evs, f.Data)
		}
	}
	return evs
}

// TestNlmonCapture captures an imp2 conversation on NETLINK_USERSOCK
// (imp2-replay as the kernel side, imp2-record as the consumer) on nlmon0
// as tcpdump would, checks that the packet type is 4 (PACKET_OUTGOING) in
// both directions, decodes the capture with the direction each imp2
// message type implies, and replays it into imp2-record: every event
// arrives byte for byte.
func TestNlmonCapture(t *testing.T) {
	const n = 300
	src := filepath.Join(t.TempDir(), "src.pcapng")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapnl.NewWriter(f, pcapnl.WriterOptions{Compression: pcapnl.None, Family: imp2.UserSockFamily})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	tm := time.Now().UnixNano()
	for i := range n {
		e := imp2.Event{Src: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Dest: pingDst, Extended: true,
			TimeNs: uint64(i) * 1000, IfIndex: 1, ICMPType: 8, ICMPID: 0x4e10, ICMPSeq: uint16(i), Flags: imp2.EventFlagICMP, IPLen: 84}
		b := imp2.AppendEventMessage(nil, uint32(i+1), e)
		want = append(want, b)
		if err := w.WriteFrame(&pcapnl.Frame{Time: tm + int64(i)*1000, Direction: pcapnl.ToUser, Family: imp2.UserSockFamily, Data: b}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	capture := startNlmon(t)
	rec1 := converse(t, src, 7101, n)
	capPath, err := capture.finish()
	if err != nil {
		t.Fatalf("capture: %v", err)
	}

	// The file as written: every imp2 message on NETLINK_USERSOCK, either
	// way, has packet type 4.
	raw, err := os.ReadFile(capPath)
	if err != nil {
		t.Fatal(err)
	}
	pkttypes := map[string]map[uint16]int{} // message type -> packet type -> count
	for off := 24; off+16 <= len(raw); {
		incl := int(binary.LittleEndian.Uint32(raw[off+8:]))
		p := raw[off+16 : off+16+incl]
		off += 16 + incl
		if binary.BigEndian.Uint16(p[14:]) != imp2.UserSockFamily || len(p) < 16+imp2.HeaderLen {
			continue
		}
		typ := fmt.Sprint(binary.NativeEndian.Uint16(p[16+4:]))
		if pkttypes[typ] == nil {
			pkttypes[typ] = map[uint16]int{}
		}
		pkttypes[typ][binary.BigEndian.Uint16(p)]++
		if hatype := binary.BigEndian.Uint16(p[2:]); hatype != pcapnl.ARPHRDNetlink {
			t.Fatalf("ARPHRD %d in the pseudo-header", hatype)
		}
	}
	t.Logf("NETLINK_USERSOCK messages by nlmsg_type: packet type -> count: %v", pkttypes)
	for _, typ := range []uint16{imp2.TypeRegister, imp2.TypeEvent, imp2.TypeGetStats, imp2.TypeStats, imp2.TypeClose} {
		if c := pkttypes[fmt.Sprint(typ)]; len(c) != 1 || c[4] == 0 {
			t.Errorf("nlmsg_type %d: packet types %v, want 4 only", typ, c)
		}
	}
	if pkttypes["1"][4] != n {
		t.Errorf("%d events captured, want %d", pkttypes["1"][4], n)
	}

	// Decoded: the direction of each imp2 message from its type, the ack
	// (NLMSG_ERROR) unknown, as is everything of other families.
	frames := traceFrames(t, capPath)
	seen := map[uint16]int{}
	for _, fr := range frames {
		h, err := fr.Header()
		if err != nil || fr.Family != imp2.UserSockFamily {
			if fr.Direction != pcapnl.DirUnknown {
				t.Errorf("family %d frame has direction %v", fr.Family, fr.Direction)
			}
			continue
		}
		seen[h.Type]++
		want := map[uint16]pcapnl.Direction{imp2.TypeRegister: pcapnl.ToKernel, imp2.TypeEvent: pcapnl.ToUser,
			imp2.TypeGetStats: pcapnl.ToKernel, imp2.TypeStats: pcapnl.ToUser, imp2.TypeClose: pcapnl.ToKernel}[h.Type]
		if h.Type == 2 && h.Len > imp2.HeaderLen { // NLMSG_ERROR, the ack: nothing tells
			want = pcapnl.DirUnknown
		}
		if fr.Direction != want {
			t.Errorf("nlmsg_type %d, %d bytes: direction %v, want %v", h.Type, h.Len, fr.Direction, want)
		}
	}
	t.Logf("NETLINK_USERSOCK frames decoded, by nlmsg_type: %v", seen)
	capEvents := events(frames)
	sameBytes(t, "events in the nlmon capture", capEvents, want)
	sameBytes(t, "events imp2-record received", events(traceFrames(t, rec1)), want)

	// Replayed as captured: the events (their direction from their type)
	// reach a new imp2-record byte for byte.
	rec2 := converse(t, capPath, 7102, n, "-filter", "type=event")
	sameBytes(t, "events replayed from the nlmon capture", events(traceFrames(t, rec2)), capEvents)
}

func sameBytes(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: %d differs:\n got %x\nwant %x", what, i, got[i], want[i])
		}
	}
}
