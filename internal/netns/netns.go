//go:build linux

// Package netns builds the benchmark topology: two network namespaces joined
// by a veth pair, addressed from 198.18.0.0/15 (RFC 2544's benchmarking
// range), so that floods never reach any other address.
//
// Namespaces are named <prefix>-<pid>-<n>-src/-dst and created with iproute2
// (`ip netns add`, which owns the /run/netns bind-mount conventions). The
// veth pair is created directly inside the namespaces, never in the root
// one, and dies with them. Removal is done in-process (umount + unlink, what
// `ip netns del` does) so Close works from a signal-handling path without
// forking, and Cleanup removes what a killed run left behind.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/internal/icmp"
	"golang.org/x/sys/unix"
)

// DefaultPrefix names the namespaces of benchmark runs.
const DefaultPrefix = "imp2b"

// Addresses of the two ends. Both namespaces are private, so every topology
// can use the same ones.
var (
	SrcAddr = netip.MustParseAddr("198.18.0.1")
	DstAddr = netip.MustParseAddr("198.18.0.2")
)

// Link is the veth interface name in both namespaces.
const Link = "veth0"

const (
	runDir    = "/run/netns"
	prefixLen = 30
	// Locally administered addresses; each namespace is private.
	srcMAC       = "02:00:c6:12:00:01"
	dstMAC       = "02:00:c6:12:00:02"
	probeTimeout = 5 * time.Second
)

// NS is a named network namespace (a bind mount under /run/netns).
type NS struct {
	Name string
}

func (ns NS) path() string { return filepath.Join(runDir, ns.Name) }

// Do runs fn on a locked OS thread switched into the namespace, so sockets
// fn creates belong to it (they stay there after Do returns). Goroutines fn
// starts run elsewhere and do not inherit the namespace.
func (ns NS) Do(fn func() error) error {
	target, err := unix.Open(ns.path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", ns.Name, err)
	}
	defer unix.Close(target)
	return do(target, ns.Name, fn)
}

// DoFD is Do for the namespace of an open file descriptor (of
// /proc/PID/ns/net or a /run/netns bind mount), as imp2.Config.NetNS
// names one.
func DoFD(fd int, fn func() error) error {
	return do(fd, "fd "+strconv.Itoa(fd), fn)
}

// do is the toolkit's one setns. setns affects only the
// calling thread, so the goroutine stays locked to it while it is
// switched. Errors of its own name the namespace as name; fn's are
// returned as they are.
func do(target int, name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: current namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter %s: %w", name, os.NewSyscallError("setns", err))
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the namespace: keep it locked so the
		// runtime retires it when this goroutine ends.
		return errors.Join(ferr, fmt.Errorf("netns: leave %s: %w", name, os.NewSyscallError("setns", err)))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Command prepares name with args to run inside the namespace
// (`ip netns exec`).
func (ns NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Sysctl sets a sysctl under /proc/sys (key with dots or slashes) in the
// namespace: per-namespace entries such as net.ipv4.* resolve against the
// writing thread's namespace.
func (ns NS) Sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	return ns.Do(func() error {
		if err := os.WriteFile(p, []byte(value), 0); err != nil {
			return fmt.Errorf("netns: sysctl %s=%s in %s: %w", key, value, ns.Name, err)
		}
		return nil
	})
}

// Topology is a pair of namespaces joined by a veth pair: Src holds
// SrcAddr, Dst holds DstAddr, both on Link.
type Topology struct {
	Src, Dst NS

	once sync.Once
	err  error
}

var serial atomic.Uint32

// New builds a topology with namespaces named after prefix ("" means
// DefaultPrefix), the process id and a per-process serial, and returns
// once an echo request crosses it. On error everything created so far is
// removed.
func New(ctx context.Context, prefix string) (*Topology, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "/ ") || prefix == "." || prefix == ".." {
		return nil, fmt.Errorf("netns: bad prefix %q", prefix)
	}
	base := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), serial.Add(1))
	t := &Topology{Src: NS{base + "-src"}, Dst: NS{base + "-dst"}}
	if err := t.build(ctx); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *Topology) build(ctx context.Context) error {
	cmds := [][]string{
		{"netns", "add", t.Src.Name},
		{"netns", "add", t.Dst.Name},
		{"link", "add", Link, "netns", t.Src.Name, "address", srcMAC, "type", "veth",
			"peer", "name", Link, "netns", t.Dst.Name, "address", dstMAC},
	}
	// Permanent neighbour entries: without them the first packets of a
	// flood wait in the ARP queue (212992 bytes of truesize, 256 packets)
	// and the rest are dropped silently while ARP resolves.
	for _, e := range []struct {
		ns         NS
		addr, peer netip.Addr
		peerMAC    string
	}{{t.Src, SrcAddr, DstAddr, dstMAC}, {t.Dst, DstAddr, SrcAddr, srcMAC}} {
		cmds = append(cmds,
			[]string{"-n", e.ns.Name, "addr", "add", netip.PrefixFrom(e.addr, prefixLen).String(), "dev", Link},
			[]string{"-n", e.ns.Name, "neigh", "replace", e.peer.String(), "lladdr", e.peerMAC, "dev", Link, "nud", "permanent"},
			[]string{"-n", e.ns.Name, "link", "set", "lo", "up"},
			[]string{"-n", e.ns.Name, "link", "set", Link, "up"})
	}
	for _, args := range cmds {
		if err := IP(ctx, args...); err != nil {
			return err
		}
	}
	// The pair is on-link, so strict reverse-path filtering would pass,
	// but a host configured with loose or strict defaults must not change
	// what the benchmark sees.
	for _, ns := range []NS{t.Src, t.Dst} {
		for _, dev := range []string{"all", "default", Link} {
			if err := ns.Sysctl("net.ipv4.conf."+dev+".rp_filter", "0"); err != nil {
				return err
			}
		}
	}
	return t.Src.Do(func() error { return probe(ctx) })
}

// probe waits until an echo request from the source namespace is answered.
// A veth sends through the noop qdisc, silently dropping everything, until
// linkwatch activates it after carrier-on, which it may delay by up to a
// second when other links changed recently.
func probe(ctx context.Context) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("netns: probe socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netns: probe socket: %w", err)
	}
	id := uint16(os.Getpid())
	dst := &unix.SockaddrInet4{Addr: DstAddr.As4()}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(probeTimeout)
	for seq := uint16(0); time.Now().Before(deadline); seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := unix.Sendto(fd, icmp.AppendEcho(nil, id, seq, nil), 0, dst); err != nil {
			return fmt.Errorf("netns: probe %v: %w", DstAddr, err)
		}
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				break // timed out: send again
			}
			p, err := icmp.ParseIPv4(buf[:n])
			if err != nil || p.ICMP == nil {
				continue
			}
			typ, gotID, _, err := icmp.ParseEcho(p.ICMP)
			if err == nil && typ == icmp.TypeEchoReply && gotID == id {
				return nil
			}
		}
	}
	return fmt.Errorf("netns: %v does not answer after %v", DstAddr, probeTimeout)
}

// IP runs iproute2's ip with args; its error carries the command line and
// what ip printed.
func IP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Close removes both namespaces, and with them the veth pair and any
// nftables rules inside. It is safe to call more than once and from any
// goroutine (a signal handler's); it does not fork. Sockets still open in
// a namespace keep it alive, unnamed, until they are closed.
func (t *Topology) Close() error {
	t.once.Do(func() {
		t.err = errors.Join(Remove(t.Src.Name), Remove(t.Dst.Name))
	})
	return t.err
}

// Remove does what `ip netns del` does, without forking: it detaches and
// deletes the name under /run/netns (a namespace made by `ip netns add`,
// or a namespace file bound there). A missing name is not an error.
func Remove(name string) error {
	p := filepath.Join(runDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("netns: unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// Cleanup removes the namespaces named <prefix>-<pid>-… whose process is
// gone and returns their names; RemoveLeftovers says more about each.
func Cleanup(prefix string) ([]string, error) {
	left, err := RemoveLeftovers(prefix)
	names := make([]string, len(left))
	for i, l := range left {
		names[i] = l.Name
	}
	return names, err
}

// Leftover is a namespace a killed run left behind, removed by
// RemoveLeftovers with what it held.
type Leftover struct {
	Name string
	PID  int // the run that made it, gone
	// Links and NFTTables are the devices (the run's veth end) and the
	// nftables tables ("ip imp2bench") inside: they lived only in the
	// namespace and went with it.
	Links     []string
	NFTTables []string
}

// String is the line a run prints about it.
func (l Leftover) String() string {
	s := fmt.Sprintf("netns %s of a killed run (pid %d)", l.Name, l.PID)
	var with []string
	for _, n := range l.Links {
		with = append(with, "link "+n)
	}
	for _, t := range l.NFTTables {
		with = append(with, "nft table "+t)
	}
	if len(with) > 0 {
		s += ", with its " + strings.Join(with, " and ")
	}
	return s
}

// RemoveLeftovers removes the namespaces named <prefix>-<pid>-… whose
// process is gone: what crashed or killed runs left behind (SIGKILL runs
// no cleanup). Namespaces of live processes (concurrent runs, this one)
// are kept.
func RemoveLeftovers(prefix string) ([]Leftover, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	var removed []Leftover
	var errs []error
	for _, e := range ents {
		pid, ok := ownerPID(e.Name(), prefix)
		if !ok || alive(pid) {
			continue
		}
		l := Leftover{Name: e.Name(), PID: pid}
		l.Links, l.NFTTables = contents(NS{e.Name()})
		if err := Remove(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, l)
	}
	return removed, errors.Join(errs...)
}

// contents lists the devices other than lo and the nftables tables in ns,
// for the report only: what cannot be listed (no nft installed, a
// namespace half made) is left out.
func contents(ns NS) (links, tables []string) {
	ns.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 {
				links = append(links, i.Name)
			}
		}
		return err
	})
	if _, err := exec.LookPath("nft"); err != nil {
		return links, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, "nft", "list", "tables").Output()
	if err != nil {
		return links, nil
	}
	for _, l := range strings.Split(string(out), "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(l), "table "); ok {
			tables = append(tables, t)
		}
	}
	return links, tables
}

// ownerPID parses the pid out of <prefix>-<pid>-<rest>.
func ownerPID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// alive reports whether a process with this pid exists (a reused pid
// looks alive: its namespaces wait for a later Cleanup).
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}
