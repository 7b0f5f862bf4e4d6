//go:build linux

package icmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imp2/imp2/internal/netns"
	"golang.org/x/sys/unix"
)

// The topology. Packets with recorded (spoofed) addresses are
// written by a packet socket onto veth0 of a source namespace this run
// creates; the other end of the veth is in the destination namespace,
// where the module's hook (PRE_ROUTING) reports them to the consumers
// there. No route in the source namespace is involved: a packet socket
// puts every packet on the veth, whatever its destination (loopback and
// the source namespace's own address included), and nowhere else.
//
// Fresh (no Options.DestNetNS): the destination is a namespace of ours too
// (internal/netns: 198.18.0.1/30 ↔ .2, permanent neighbours, rp_filter 0).
// It has no default route and forwards nothing, so the spoofed packets end
// there after the hook, and replies to spoofed sources have no route out.
//
// Existing (DestNetNS a name in /run/netns or a namespace file such as /proc/1/ns/net, the
// root namespace of a host or VM): the peer interface imp2r<pid> is
// created inside that namespace with no address and IPv6 off, and an
// nftables table there drops everything arriving on it at PRE_ROUTING
// priority 0, after the module's hook (NF_IP_PRI_FILTER − 1): the hook
// sees every packet, routing, local delivery and forwarding none, so no
// spoofed packet or reply to one can leave, even on a host that forwards.
// Connection tracking is skipped for them (notrack at priority raw) where
// conntrack is loaded, so they fill no conntrack table. Without nft the run
// refuses to start.

const (
	topoPrefix = "imp2r"
	srcMAC     = "02:00:c6:12:00:01"
	peerMAC    = "02:00:c6:12:00:02"
)

type icmpTopo struct {
	fresh *netns.Topology // fresh mode

	src        netns.NS // where the sender's socket lives
	srcIfindex int
	peerMAC    net.HardwareAddr

	dst       netns.NS // ip -n name of the destination
	dstPath   string   // namespace file of the destination
	peer      string   // interface in the destination the packets arrive on
	peerIndex int
	table     string // nftables table in the destination (existing mode)
	attached  string // /run/netns name we bind-mounted for a namespace file
	notrack   bool
}

// newICMPTopo builds the topology; target is Options.DestNetNS ("" for fresh).
func newICMPTopo(ctx context.Context, target string, logf func(string, ...any)) (*icmpTopo, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("icmp: the namespaces are built with iproute2: %w", err)
	}
	if removed, _ := netns.Cleanup(topoPrefix); len(removed) > 0 {
		logf("icmp: removed namespaces left by dead runs: %s", strings.Join(removed, ", "))
	}
	t := &icmpTopo{}
	var err error
	if target == "" {
		err = t.buildFresh(ctx)
	} else {
		err = t.buildExisting(ctx, target)
	}
	if err != nil {
		return nil, errors.Join(err, t.close())
	}
	return t, nil
}

func (t *icmpTopo) buildFresh(ctx context.Context) error {
	top, err := netns.New(ctx, topoPrefix)
	if err != nil {
		return err
	}
	t.fresh, t.src, t.dst = top, top.Src, top.Dst
	t.dstPath, t.peer = filepath.Join("/run/netns", top.Dst.Name), netns.Link
	if err := t.dst.Sysctl("net.ipv4.ip_forward", "0"); err != nil {
		return err
	}
	// Kernel-built traffic of the source namespace (a tool run there with
	// ip netns exec) goes into the veth too; the sender does not need it.
	if err := netns.IP(ctx, "-n", t.src.Name, "route", "add", "default", "via", netns.DstAddr.String(), "dev", netns.Link, "onlink"); err != nil {
		return err
	}
	return t.lookup()
}

func (t *icmpTopo) buildExisting(ctx context.Context, target string) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("icmp: destination namespace: nft (package nftables) is needed to keep the spoofed packets from being routed in %s: %w", target, err)
	}
	pid := os.Getpid()
	t.src = netns.NS{Name: fmt.Sprintf("%s-%d-src", topoPrefix, pid)}
	if strings.Contains(target, "/") {
		// A namespace file (/proc/PID/ns/net): give it a name under
		// /run/netns for ip -n, as `ip netns attach` does.
		t.attached = fmt.Sprintf("%s-%d-target", topoPrefix, pid)
		if err := attach(target, t.attached); err != nil {
			return err
		}
		t.dst, t.dstPath = netns.NS{Name: t.attached}, target
	} else {
		t.dst, t.dstPath = netns.NS{Name: target}, filepath.Join("/run/netns", target)
		if _, err := os.Stat(t.dstPath); err != nil {
			return fmt.Errorf("icmp: destination namespace %s: no such namespace (ip netns list): %w", target, err)
		}
	}
	t.peer = fmt.Sprintf("%s%d", topoPrefix, pid)
	t.table = fmt.Sprintf("imp2_replay_%d", pid)
	steps := [][]string{
		{"netns", "add", t.src.Name},
		{"link", "add", netns.Link, "netns", t.src.Name, "address", srcMAC, "type", "veth",
			"peer", "name", t.peer, "netns", t.dst.Name, "address", peerMAC},
	}
	for _, s := range steps {
		if err := netns.IP(ctx, s...); err != nil {
			return err
		}
	}
	t.removeStaleGuards(ctx)
	// The guard first, then the link up: nothing arrives unguarded.
	if err := t.guard(ctx); err != nil {
		return err
	}
	for _, ns := range []struct {
		ns  netns.NS
		dev string
	}{{t.dst, t.peer}, {t.src, "all"}} {
		// Quiet: no IPv6 addresses, router solicitations or DAD. A kernel
		// without IPv6 has no such entry.
		if err := ns.ns.Sysctl("net.ipv6.conf."+ns.dev+".disable_ipv6", "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	gw := netns.DstAddr.String()
	for _, s := range [][]string{
		{"-n", t.src.Name, "addr", "add", netip.PrefixFrom(netns.SrcAddr, 30).String(), "dev", netns.Link},
		{"-n", t.src.Name, "neigh", "replace", gw, "lladdr", peerMAC, "dev", netns.Link, "nud", "permanent"},
		{"-n", t.src.Name, "link", "set", "lo", "up"},
		{"-n", t.src.Name, "link", "set", netns.Link, "up"},
		{"-n", t.dst.Name, "link", "set", t.peer, "up"},
		{"-n", t.src.Name, "route", "add", "default", "via", gw, "dev", netns.Link, "onlink"},
	} {
		if err := netns.IP(ctx, s...); err != nil {
			return err
		}
	}
	if err := t.lookup(); err != nil {
		return err
	}
	return t.waitActive(ctx)
}

// guard installs the nftables table that drops, after the hook, what
// arrives on the peer.
func (t *icmpTopo) guard(ctx context.Context) error {
	drop := fmt.Sprintf("table ip %s {\n"+
		"\tchain guard { type filter hook prerouting priority 0; policy accept; iifname %q drop; }\n", t.table, t.peer)
	notrack := fmt.Sprintf("\tchain notrack { type filter hook prerouting priority raw; policy accept; iifname %q notrack; }\n", t.peer)
	// With notrack where the kernel can (it needs nft_ct and conntrack),
	// else the drop alone.
	if err := t.nft(ctx, drop+notrack+"}\n"); err == nil {
		t.notrack = true
		return nil
	}
	if err := t.nft(ctx, drop+"}\n"); err != nil {
		return fmt.Errorf("icmp: destination namespace %s: installing the nftables guard: %w", t.dst.Name, err)
	}
	return nil
}

// removeStaleGuards deletes the tables of killed runs (their peers went
// with their source namespaces, removed by netns.Cleanup).
func (t *icmpTopo) removeStaleGuards(ctx context.Context) {
	out, err := t.dst.Command(ctx, "nft", "list", "tables", "ip").Output()
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(out), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(l), "table ip imp2_replay_")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		t.nft(ctx, "delete table ip imp2_replay_"+name+"\n")
	}
}

func (t *icmpTopo) nft(ctx context.Context, rules string) error {
	cmd := t.dst.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lookup reads the interface indexes and the peer's address.
func (t *icmpTopo) lookup() error {
	err := t.src.Do(func() error {
		ifc, err := net.InterfaceByName(netns.Link)
		if err != nil {
			return err
		}
		t.srcIfindex = ifc.Index
		return nil
	})
	if err != nil {
		return fmt.Errorf("icmp: source interface: %w", err)
	}
	err = t.dst.Do(func() error {
		ifc, err := net.InterfaceByName(t.peer)
		if err != nil {
			return err
		}
		t.peerIndex, t.peerMAC = ifc.Index, ifc.HardwareAddr
		return nil
	})
	if err != nil {
		return fmt.Errorf("icmp: destination interface: %w", err)
	}
	return nil
}

// waitActive waits until the source veth transmits: it drops everything
// through the noop qdisc until linkwatch activates it after carrier-on
// (internal/netns probes with an echo for the same reason; here nothing
// answers one).
func (t *icmpTopo) waitActive(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, "ip", "-n", t.src.Name, "-o", "link", "show", netns.Link).Output()
		if err == nil && bytes.Contains(out, []byte("state UP")) && !bytes.Contains(out, []byte("qdisc noop")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("icmp: %s in %s did not come up: %s", netns.Link, t.src.Name, bytes.TrimSpace(out))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attach bind-mounts a namespace file to /run/netns/name.
func attach(path, name string) error {
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("icmp: destination namespace %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("icmp: destination namespace %s: not a network namespace file", path)
	}
	p := filepath.Join("/run/netns", name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("icmp: destination namespace: %w", err)
	}
	f.Close()
	if err := unix.Mount(path, p, "", unix.MS_BIND, ""); err != nil {
		os.Remove(p)
		return fmt.Errorf("icmp: destination namespace %s: bind mount: %w", path, err)
	}
	return nil
}

// describe says where the packets go, for the log.
func (t *icmpTopo) describe() string {
	if t.fresh != nil {
		return fmt.Sprintf("source namespace %s → %s in destination namespace %s (fresh; consumers: ip netns exec %s CMD)",
			t.src.Name, t.peer, t.dst.Name, t.dst.Name)
	}
	return fmt.Sprintf("source namespace %s → %s in %s (existing; nftables table %s drops them after the hook)",
		t.src.Name, t.peer, t.dstPath, t.table)
}

// close removes everything the run made: the veth pair, the namespaces,
// the nftables table, the bind mount.
func (t *icmpTopo) close() error {
	var errs []error
	if t.fresh != nil {
		errs = append(errs, t.fresh.Close())
	} else if t.src.Name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// The pair goes now, not whenever the kernel gets round to
		// dismantling the namespace, and before the guard does.
		if t.peerIndex != 0 {
			if err := netns.IP(ctx, "-n", t.src.Name, "link", "del", netns.Link); err != nil {
				errs = append(errs, err)
			}
		}
		cancel()
		errs = append(errs, netns.Remove(t.src.Name))
	}
	if t.table != "" && t.dst.Name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// A table never installed is not an error here.
		if err := t.nft(ctx, "delete table ip "+t.table+"\n"); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		cancel()
	}
	if t.attached != "" {
		errs = append(errs, netns.Remove(t.attached))
	}
	return errors.Join(errs...)
}

// peerName reports the interface in the destination, for the summary.
func (t *icmpTopo) peerName() string { return t.peer + " (ifindex " + strconv.Itoa(t.peerIndex) + ")" }
