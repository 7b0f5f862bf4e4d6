//go:build linux

// Package nflog reads the kernel's NFLOG path (nft `log group N` →
// nfnetlink_log → netlink unicast with MSG_DONTWAIT), the in-kernel peer
// the imp2 benchmarks compare the module against, and matches every logged
// packet to the flood packet that caused it.
//
// It is a small reader on golang.org/x/sys/unix rather than
// github.com/florianl/go-nflog/v2: that library hands each packet to a
// callback as an Attribute of pointers it allocates (time.Time, []byte
// copies), reads one datagram per syscall, and exposes neither
// NFULNL_CFG_F_SEQ gaps nor SO_MEMINFO; this reader uses recvmmsg into
// buffers it owns and parses attributes in place, allocating nothing per
// packet. Figures are in the commit that introduced it.
package nflog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/icmp"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/nlsock"
	"github.com/imp2/imp2/internal/pace"
	"golang.org/x/sys/unix"
)

// nfnetlink_log constants (linux/netfilter/nfnetlink_log.h); x/sys/unix
// does not carry them.
const (
	msgPacket = unix.NFNL_SUBSYS_ULOG<<8 | 0 // NFULNL_MSG_PACKET
	msgConfig = unix.NFNL_SUBSYS_ULOG<<8 | 1 // NFULNL_MSG_CONFIG

	attrTimestamp = 3  // NFULA_TIMESTAMP: be64 sec, be64 usec
	attrPayload   = 9  // NFULA_PAYLOAD: the packet from the network header
	attrSeq       = 12 // NFULA_SEQ: be32, per instance

	cfgCmd     = 1 // NFULA_CFG_CMD
	cfgMode    = 2 // NFULA_CFG_MODE
	cfgQThresh = 5 // NFULA_CFG_QTHRESH
	cfgFlags   = 6 // NFULA_CFG_FLAGS

	cmdBind    = 1 // NFULNL_CFG_CMD_BIND
	copyPacket = 2 // NFULNL_COPY_PACKET
	flagSeq    = 1 // NFULNL_CFG_F_SEQ

	nfgenLen    = 4      // struct nfgenmsg
	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

// Config configures a Conn.
type Config struct {
	// Group is the nfnetlink_log group, the N of `log group N`.
	Group uint16
	// QThresh is the queue threshold: how many packets nfnetlink_log
	// gathers into one netlink datagram. 1 sends one datagram per packet,
	// like imp2; 0 keeps the kernel's batching (100 packets, a full
	// buffer of about a page, or a 1 s flush timer, whichever comes
	// first).
	QThresh uint32
	// CopyRange is how many bytes of each packet (from the IP header) are
	// copied; 0 means 64, enough for the IP and ICMP headers and the
	// flood payload.
	CopyRange uint16
	// RcvBuf, if positive, sets the receive buffer in bytes with
	// SO_RCVBUFFORCE (else SO_RCVBUF); the kernel doubles it.
	RcvBuf int
	// NoENOBUFS sets NETLINK_NO_ENOBUFS: overruns then show only as
	// sequence gaps and SO_MEMINFO drops, not as read errors.
	NoENOBUFS bool
	// Timestamps turns on the kernel's receive timestamps (SO_TIMESTAMP
	// on this socket; the switch is global and takes effect a moment
	// later), without which NFULA_TIMESTAMP is absent.
	Timestamps bool
	// Batch is how many datagrams one read takes; 0 means 64.
	Batch int
}

// Packet is one logged flood packet.
type Packet struct {
	flood.Packet
	// Seq is nfnetlink_log's per-instance sequence number.
	Seq uint32
	// KernelWall is NFULA_TIMESTAMP: the skb's receive time, taken when
	// the packet entered the destination namespace. It is wall-clock
	// (CLOCK_REALTIME, unix ns, µs resolution), not CLOCK_MONOTONIC like
	// Sched and Recv; 0 when absent.
	KernelWall int64
	// Recv is when the read returned (CLOCK_MONOTONIC ns), shared by the
	// packets of one read: Recv - Sched is the end-to-end latency.
	Recv int64
	// RecvWall is the same instant on the wall clock (unix ns):
	// RecvWall - KernelWall is the hook-to-consumer latency without
	// mixing clocks.
	RecvWall int64
}

// Stats counts what a Conn has read. Drops are cross-checked by
// comparing SeqLost with MemInfo().Drops: with QThresh 1 both count
// packets; with batching Drops counts datagrams.
type Stats struct {
	Datagrams uint64 // netlink datagrams read
	Packets   uint64 // flood packets handed to Read's callback
	Foreign   uint64 // logged packets that are not flood echo requests
	// SeqLost is the number of packets missing from the NFULA_SEQ
	// sequence. A gap is seen only when a later packet arrives.
	SeqLost   uint64
	Overruns  uint64 // reads that failed with ENOBUFS
	Truncated uint64 // datagrams longer than the read buffer
}

// ErrOverrun is returned by Read when the kernel dropped datagrams
// because the receive queue was full (ENOBUFS). Read on.
var ErrOverrun = fmt.Errorf("nflog: receive queue overrun, packets were dropped: %w", syscall.ENOBUFS)

// AddRule adds `ip protocol icmp log group N` to a table of its own in
// namespace ns, in the prerouting hook at priority -1: the imp2 module's
// hook point (NF_IP_PRI_FILTER - 1). The rule goes away with the namespace.
func AddRule(ctx context.Context, ns netns.NS, group uint16) error {
	rules := fmt.Sprintf(`table ip imp2bench {
	chain prerouting {
		type filter hook prerouting priority -1; policy accept;
		ip protocol icmp log group %d
	}
}
`, group)
	cmd := ns.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nflog: nft in %s: %w: %s", ns.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Conn is a bound nfnetlink_log consumer. Read may be called from one
// goroutine at a time; Stats, MemInfo, SetReadDeadline and Close from any.
type Conn struct {
	s      *nlsock.Sock
	closed atomic.Bool

	// read state, owned by the reading goroutine
	bufs  [][]byte
	batch *nlsock.Batch
	pkt   Packet
	seq   imp2.SeqTracker // NFULA_SEQ, FromOne
	stats Stats

	pub [6]atomic.Uint64 // stats, published after each Read without allocating
}

// Dial opens a NETLINK_NETFILTER socket in the calling thread's network
// namespace (call it inside netns.NS.Do) and binds it to cfg.Group with
// packet copy, the queue threshold and sequence numbers. Dial before the
// traffic starts: packets logged before the bind is acknowledged are
// discarded (and show in SeqLost).
func Dial(cfg Config) (*Conn, error) {
	if cfg.CopyRange == 0 {
		cfg.CopyRange = 64
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	fd, err := unix.Socket(unix.AF_NETLINK, nlsock.SocketType(false), unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	if err := configure(fd, cfg); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &Conn{seq: imp2.SeqTracker{FromOne: true}}
	if c.s, err = nlsock.New(fd, false); err != nil {
		return nil, err
	}
	// A datagram holds up to about a page of messages, or one message
	// bigger than that.
	size := 8192 + int(cfg.CopyRange) + 512
	slab := make([]byte, size*cfg.Batch)
	c.bufs = make([][]byte, cfg.Batch)
	c.batch = nlsock.NewBatch(cfg.Batch, false)
	for i := range c.bufs {
		c.bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
		c.batch.Set(i, c.bufs[i])
	}
	return c, nil
}

func configure(fd int, cfg Config) error {
	if cfg.RcvBuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.RcvBuf); err != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.RcvBuf); err != nil {
				return os.NewSyscallError("setsockopt SO_RCVBUF", err)
			}
		}
	}
	if cfg.NoENOBUFS {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1); err != nil {
			return os.NewSyscallError("setsockopt NETLINK_NO_ENOBUFS", err)
		}
	}
	if cfg.Timestamps {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMP, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_TIMESTAMP", err)
		}
	}
	// One message binds and configures, so the instance never runs with
	// the defaults.
	b := make([]byte, unix.NLMSG_HDRLEN, 64)
	b = append(b, unix.AF_INET, unix.NFNETLINK_V0, byte(cfg.Group>>8), byte(cfg.Group))
	b = appendAttr(b, cfgCmd, cmdBind)
	// struct nfulnl_msg_config_mode, packed: be32 copy_range, u8 copy_mode, u8 pad.
	b = appendAttr(b, cfgMode, 0, 0, byte(cfg.CopyRange>>8), byte(cfg.CopyRange), copyPacket, 0)
	if cfg.QThresh > 0 {
		b = appendAttr(b, cfgQThresh, binary.BigEndian.AppendUint32(nil, cfg.QThresh)...)
	}
	b = appendAttr(b, cfgFlags, 0, flagSeq)
	h := (*unix.NlMsghdr)(unsafe.Pointer(&b[0]))
	*h = unix.NlMsghdr{Len: uint32(len(b)), Type: msgConfig, Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK, Seq: 1}
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto", err)
	}
	return waitAck(fd, 1, cfg.Group)
}

// appendAttr appends a netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, v ...byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.NLA_HDRLEN+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// waitAck reads the acknowledgement of request seq (no packet can arrive
// before it: the instance did not exist).
func waitAck(fd int, seq uint32, group uint16) error {
	buf := make([]byte, 4096)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if n, err := unix.Poll(pfd, 2000); err == unix.EINTR {
			continue
		} else if err != nil || n == 0 {
			return fmt.Errorf("nflog: no acknowledgement of the configuration: %v", err)
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		for m, err := range imp2.Messages(buf[:n]) {
			if err != nil {
				break
			}
			h := m.Header
			if h.Type == unix.NLMSG_ERROR && h.Seq == seq && len(m.Payload) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(m.Payload)); e != 0 {
					err := syscall.Errno(-e)
					if err == unix.EBUSY {
						return fmt.Errorf("nflog: group %d is taken by another socket in this namespace: %w", group, err)
					}
					return fmt.Errorf("nflog: bind group %d: %w", group, err)
				}
				return nil
			}
		}
	}
}

// Read blocks until at least one datagram is queued, reads as many as are
// queued (up to Config.Batch) and calls fn for every flood packet in
// them, in order; *Packet is reused after fn returns. It returns how many
// packets it passed to fn and allocates nothing. Errors: ErrOverrun (read
// on), os.ErrDeadlineExceeded, net.ErrClosed after Close.
func (c *Conn) Read(fn func(*Packet)) (int, error) {
	n, err := c.s.Read(c.batch, len(c.bufs))
	switch {
	case err == nil:
	case c.closed.Load():
		return 0, net.ErrClosed
	case err == unix.ENOBUFS:
		c.stats.Overruns++
		c.publish()
		return 0, ErrOverrun
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, err
	default:
		return 0, os.NewSyscallError("recvmmsg", err)
	}
	c.pkt.Recv, c.pkt.RecvWall = pace.Monotonic(), time.Now().UnixNano()
	before := c.stats.Packets
	for i := range n {
		c.stats.Datagrams++
		if c.batch.Truncated(i) {
			c.stats.Truncated++
		}
		c.parse(c.bufs[i][:min(c.batch.Len(i), len(c.bufs[i]))], fn)
	}
	c.publish()
	return int(c.stats.Packets - before), nil
}

// parse walks the netlink messages of one datagram.
func (c *Conn) parse(b []byte, fn func(*Packet)) {
	for m, err := range imp2.Messages(b) {
		if err != nil {
			return
		}
		if m.Header.Type == msgPacket && len(m.Payload) >= nfgenLen {
			c.packet(m.Payload[nfgenLen:], fn)
		}
	}
}

// packet reads the attributes of one logged packet.
func (c *Conn) packet(b []byte, fn func(*Packet)) {
	p := &c.pkt
	p.KernelWall = 0
	var payload []byte
	hasSeq := false
	for len(b) >= unix.NLA_HDRLEN {
		l := int(binary.NativeEndian.Uint16(b))
		if l < unix.NLA_HDRLEN || l > len(b) {
			break
		}
		v := b[unix.NLA_HDRLEN:l]
		switch binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask {
		case attrSeq:
			if len(v) >= 4 {
				p.Seq, hasSeq = binary.BigEndian.Uint32(v), true
			}
		case attrTimestamp:
			if len(v) >= 16 {
				p.KernelWall = int64(binary.BigEndian.Uint64(v))*1e9 + int64(binary.BigEndian.Uint64(v[8:]))*1e3
			}
		case attrPayload:
			payload = v
		}
		b = b[min((l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(b)):]
	}
	if hasSeq {
		// NFULA_SEQ counts the instance's packets from 0, in order (under
		// the instance lock): shifted by one it is a stream numbered from 1.
		c.stats.SeqLost += c.seq.Observe(p.Seq + 1)
	}
	fp, err := parseIPv4ICMP(payload)
	if err != nil {
		c.stats.Foreign++
		return
	}
	p.Packet = fp
	c.stats.Packets++
	fn(p)
}

// parseIPv4ICMP decodes a flood packet from an IPv4 packet.
func parseIPv4ICMP(b []byte) (flood.Packet, error) {
	p, err := icmp.ParseIPv4(b)
	if err != nil || p.ICMP == nil {
		return flood.Packet{}, flood.ErrNotFlood
	}
	return flood.Parse(p.ICMP)
}

func (c *Conn) publish() {
	s := &c.stats
	for i, v := range [...]uint64{s.Datagrams, s.Packets, s.Foreign, s.SeqLost, s.Overruns, s.Truncated} {
		c.pub[i].Store(v)
	}
}

// Stats returns the counters as of the end of the last Read.
func (c *Conn) Stats() Stats {
	p := &c.pub
	return Stats{p[0].Load(), p[1].Load(), p[2].Load(), p[3].Load(), p[4].Load(), p[5].Load()}
}

// MemInfo returns the socket's SO_MEMINFO counters; Drops counts
// datagrams, which are packets only with QThresh 1.
func (c *Conn) MemInfo() (imp2.MemInfo, error) {
	var m imp2.MemInfo
	err := c.s.Control(func(fd int) (err error) {
		m, err = imp2.ReadMemInfo(fd)
		return err
	})
	return m, err
}

// RcvBuf returns the receive buffer size the kernel granted.
func (c *Conn) RcvBuf() (int, error) {
	var v int
	err := c.s.Control(func(fd int) (err error) {
		v, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
		return os.NewSyscallError("getsockopt SO_RCVBUF", err)
	})
	return v, err
}

// SetReadDeadline sets the deadline for Read; the zero time means none.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.s.SetReadDeadline(t) }

// Close closes the socket, which unbinds the group, and wakes a blocked
// Read.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.s.Close()
}
