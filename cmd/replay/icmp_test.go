//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/replay"
	ricmp "github.com/imp2/imp2/replay/icmp"
	"golang.org/x/sys/unix"
)

func TestICMPUsageErrors(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 1})
	for _, args := range [][]string{
		{"-netns-dst", "x"},
		{"-verify"},
		{"-to", "text", "-vm"},
		{"-to", "icmp", "-verify-rcvbuf", "1"},
		{"-to", "icmp", "-verify", "-verify-tolerate", "-1"},
		{"-to", "icmp", "-verify", "-verify-wait", "0"},
		{"-to", "icmp", "-bind", "4000"},
		{"-to", "icmp", "-o", "x"},
		{"-to", "icmp", "-realtime"},
		{"-to", "icmp", "-vm-consumer", "/bin/true"},
		{"-to", "icmp", "-vm", "-netns-dst", "x"},
		{"-to", "icmp", "-vm", "-vm-consumer-out", "x"},
	} {
		var stderr bytes.Buffer
		if code := run(append([]string{"-i", in}, args...), nil, &bytes.Buffer{}, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want %d; %s", args, code, exitUsage, stderr.String())
		}
	}
}

// icmpTrace writes a trace of the events, 1 ms apart, with a recorder's
// IMP2_U_PID first (skipped) and a non-event frame (counted).
func icmpTrace(t testing.TB, evs []imp2.Event) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "icmp.pcapng.zst")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapnl.NewWriter(f, pcapnl.WriterOptions{Family: imp2.DefaultFamily})
	if err != nil {
		t.Fatal(err)
	}
	tm := t0
	write := func(dir pcapnl.Direction, b []byte) {
		if err := w.WriteFrame(&pcapnl.Frame{Time: tm, Direction: dir, Family: imp2.DefaultFamily, Data: b}); err != nil {
			t.Fatal(err)
		}
		tm += int64(time.Millisecond)
	}
	write(pcapnl.ToKernel, imp2.AppendControl(nil, imp2.TypeRegister, 0, 1, 99))
	for i, e := range evs {
		write(pcapnl.ToUser, imp2.AppendEventMessage(nil, uint32(i+1), e))
	}
	write(pcapnl.ToUser, append(imp2.AppendControl(nil, imp2.TypeStats, 0, 2, 0), imp2.AppendStats(nil, imp2.Stats{})...))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func needNetAdmin(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, veth, packet sockets)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// icmpRunSummary is what the host tests read from the -json summary.
type icmpRunSummary struct {
	FramesSent    int64          `json:"frames_sent"`
	FramesSkipped int64          `json:"frames_skipped"`
	ICMP          *ricmp.Summary `json:"icmp"`
	ExitCode      int            `json:"exit_code"`
}

// The fresh topology: every event becomes a packet, and the namespaces
// are gone afterwards. (The host kernel has no imp2 module: -verify and
// the consumer side are tested in the VM, internal/kmodtest.)
func TestICMPFresh(t *testing.T) {
	needNetAdmin(t)
	evs := imp2test.OddEvents()
	in := icmpTrace(t, evs)
	cmd := exec.Command(replayBin, "-i", in, "-to", "icmp", "-pps", "2000", "-json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var s icmpRunSummary
	if jerr := json.Unmarshal(stdout.Bytes(), &s); jerr != nil || err != nil {
		t.Fatalf("%v / %v\nstdout %s\nstderr %s", err, jerr, stdout.String(), stderr.String())
	}
	if s.ICMP == nil || s.ICMP.Packets != uint64(len(evs)) || s.ICMP.NotEvents != 1 || s.FramesSkipped != 1 ||
		s.ICMP.SendErrors != 0 || s.ICMP.Mode != "fresh" || s.ICMP.LengthDefaulted != 2 || s.ICMP.Fragments != 1 {
		t.Errorf("summary %s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "source namespace imp2r-") {
		t.Errorf("log does not say where the packets go: %s", stderr.String())
	}
	checkNoLeftovers(t, cmd.Process.Pid, "")
}

func checkNoLeftovers(t *testing.T, pid int, target string) {
	t.Helper()
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("imp2r-%d-", pid)) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	if target == "" {
		return
	}
	out, _ := exec.Command("ip", "-n", target, "-o", "link").CombinedOutput()
	if strings.Contains(string(out), fmt.Sprintf("imp2r%d", pid)) {
		t.Errorf("peer interface left in %s: %s", target, out)
	}
	out, _ = exec.Command("ip", "netns", "exec", target, "nft", "list", "tables").CombinedOutput()
	if strings.Contains(string(out), "imp2_replay") {
		t.Errorf("nftables table left in %s: %s", target, out)
	}
}

// -netns-dst into a namespace of the test's: the packets arrive byte for
// byte as built (a packet socket there sees them before the guard drops
// them), nothing is routed there (no echo reply, the forwarding counter
// does not move although forwarding is on), and everything is removed.
func TestICMPExistingNamespace(t *testing.T) {
	needNetAdmin(t, "nft")
	if out, err := exec.Command("nft", "list", "tables").CombinedOutput(); err != nil {
		t.Skipf("nftables unusable here: %v %s", err, out)
	}
	name := fmt.Sprintf("imp2rtest-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	for _, c := range [][]string{
		{"-n", name, "link", "set", "lo", "up"},
		// A router with a default route: spoofed packets must still not
		// be forwarded. The route leads into a veth pair of its own.
		{"-n", name, "link", "add", "r0", "type", "veth", "peer", "name", "r1"},
		{"-n", name, "link", "set", "r0", "up"},
		{"-n", name, "link", "set", "r1", "up"},
		{"-n", name, "addr", "add", "100.64.0.1/24", "dev", "r0"},
		{"-n", name, "neigh", "replace", "100.64.0.2", "lladdr", "02:00:00:00:00:02", "dev", "r0", "nud", "permanent"},
		{"-n", name, "route", "add", "default", "via", "100.64.0.2"},
		{"netns", "exec", name, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", c, err, out)
		}
	}
	var fd int
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Capture IPv4 arriving in the namespace.
	err = inNS(f, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	// The guard of a killed run: removed.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", name, "nft", "add", "table", "ip", fmt.Sprintf("imp2_replay_%d", dead.Process.Pid)).CombinedOutput(); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	fwdBefore := snmpIP(t, name, "ForwDatagrams")
	inBefore := snmpIP(t, name, "InReceives")

	evs := imp2test.OddEvents()
	in := icmpTrace(t, evs)
	cmd := exec.Command(replayBin, "-i", in, "-to", "icmp", "-netns-dst", name, "-pps", "2000", "-json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout %s\nstderr %s", err, stdout.String(), stderr.String())
	}
	var s icmpRunSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.ICMP == nil || s.ICMP.Packets != uint64(len(evs)) || s.ICMP.Mode != "existing" || s.ICMP.NFTTable == "" {
		t.Errorf("summary %s", stdout.String())
	}
	var got [][]byte
	buf := make([]byte, 2048)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			break
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_HOST && n >= 20 && buf[9] == 1 {
			got = append(got, bytes.Clone(buf[:n]))
		}
	}
	if len(got) != len(evs) {
		t.Fatalf("%d ICMP packets arrived in %s, want %d", len(got), name, len(evs))
	}
	for i, e := range evs {
		if want := ricmp.AppendPacket(nil, &e, uint64(i)); !bytes.Equal(got[i], want) {
			t.Errorf("packet %d arrived as\n%x\nwant\n%x", i, got[i], want)
		}
	}
	if d := snmpIP(t, name, "ForwDatagrams") - fwdBefore; d != 0 {
		t.Errorf("%d datagrams forwarded in %s: the guard let them through", d, name)
	}
	if d := snmpIP(t, name, "InReceives") - inBefore; d < int64(len(evs)) {
		t.Errorf("InReceives grew by %d, want at least %d (the packets reach IP input before the guard)", d, len(evs))
	}
	checkNoLeftovers(t, cmd.Process.Pid, name)
}

// inNS runs fn on a locked thread in the namespace of f.
func inNS(f *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked (and is retired) after the switch.
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// snmpIP reads one Ip: counter of /proc/net/snmp in the namespace.
func snmpIP(t *testing.T, ns, field string) int64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == field && i < len(f) {
				var v int64
				fmt.Sscan(f[i], &v)
				return v
			}
		}
	}
	t.Fatalf("no Ip: %s in /proc/net/snmp", field)
	return 0
}

// Without the module, -verify cannot register: a runtime error that says
// so, and nothing left behind.
func TestICMPVerifyWithoutModule(t *testing.T) {
	needNetAdmin(t)
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, imp2.DefaultFamily); err == nil {
		unix.Close(fd)
		t.Skip("the imp2 module is loaded here")
	}
	in := icmpTrace(t, imp2test.OddEvents())
	cmd := exec.Command(replayBin, "-i", in, "-to", "icmp", "-verify")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != replay.ExitError || !strings.Contains(string(out), "module is not loaded") {
		t.Errorf("exit %d: %s", code, out)
	}
	checkNoLeftovers(t, cmd.Process.Pid, "")
}
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestICMPWithoutModuleSaysSent: on a host without the module the packets
// go out, but nothing is delivered: the summary says they were sent (it
// said "delivered N"), a warning says the module is missing, and the
// exit status stays 0 (nothing failed that -verify was asked to check).
func TestICMPWithoutModuleSaysSent(t *testing.T) {
	needNetAdmin(t)
	if _, err := os.Stat("/sys/module/imp2"); err == nil {
		t.Skip("the imp2 module is loaded here")
	}
	evs := imp2test.OddEvents()
	in := icmpTrace(t, evs)
	cmd := exec.Command(replayBin, "-i", in, "-to", "icmp", "-pps", "2000")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	want := fmt.Sprintf("sent %d packets for %d frames", len(evs), len(evs)+1)
	if !strings.Contains(stdout.String(), want) || strings.Contains(stdout.String(), "delivered") {
		t.Errorf("summary does not say %q (or says delivered):\n%s", want, stdout.String())
	}
	if n := strings.Count(stderr.String(), "warning: icmp: the imp2 module is not loaded"); n != 1 {
		t.Errorf("%d warnings that the module is not loaded, want 1:\n%s", n, stderr.String())
	}
}
