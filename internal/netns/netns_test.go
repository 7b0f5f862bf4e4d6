//go:build linux

package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const childEnv = "IMP2_NETNS_TEST_CHILD"

// TestMain doubles as the "crashing run" of TestCleanupAfterKill: in the
// child it builds a topology, reports the names and waits to be killed.
func TestMain(m *testing.M) {
	if prefix := os.Getenv(childEnv); prefix != "" {
		t, err := New(context.Background(), prefix)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(t.Src.Name, t.Dst.Name)
		time.Sleep(time.Minute)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func namespaces(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// rootVeths lists veth devices of the root namespace whose peer lives in
// one of names.
func rootVeths(t *testing.T, names ...string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, n := range names {
			if strings.Contains(l, "link-netns "+n) {
				found = append(found, l)
			}
		}
	}
	return found
}

func TestTopologyPingAndClose(t *testing.T) {
	top, err := New(context.Background(), "imp2t")
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	names := []string{top.Src.Name, top.Dst.Name}
	for _, n := range names {
		if !slices.Contains(namespaces(t), n) {
			t.Fatalf("namespace %s missing after New", n)
		}
	}
	if v := rootVeths(t, names...); len(v) > 0 {
		t.Errorf("veth in the root namespace: %v", v)
	}
	out, err := top.Src.Command(context.Background(), "ping", "-c", "1", "-W", "2", DstAddr.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %v from %s: %v\n%s", DstAddr, top.Src.Name, err, out)
	}
	// Do runs in the namespace: its only non-loopback address is ours.
	err = top.Dst.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + Link + "/rp_filter")
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(b)); s != "0" {
			return fmt.Errorf("rp_filter = %s, want 0", s)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if err := top.Close(); err != nil {
		t.Fatal(err)
	}
	if err := top.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, n := range names {
		if slices.Contains(namespaces(t), n) {
			t.Errorf("namespace %s left after Close", n)
		}
	}
	if v := rootVeths(t, names...); len(v) > 0 {
		t.Errorf("veth left in the root namespace: %v", v)
	}
}

// TestDoRestoresNamespace checks that the thread Do used is back in the
// original namespace and that sockets created inside stay inside.
func TestDoRestoresNamespace(t *testing.T) {
	top, err := New(context.Background(), "imp2t")
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	var root, inside, after unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &root); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/run/netns/"+top.Dst.Name, &inside); err != nil {
		t.Fatal(err)
	}
	var fd int
	err = top.Dst.Do(func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		if st.Ino != inside.Ino {
			return fmt.Errorf("inside Do: namespace inode %d, want %d", st.Ino, inside.Ino)
		}
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// Binding the destination address works only inside the namespace.
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: DstAddr.As4()}); err != nil {
		t.Errorf("socket made in Do cannot bind %v: %v", DstAddr, err)
	}
	// No thread of the process is left in the namespace.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &after); err != nil {
			continue // the thread exited
		}
		if after.Ino != root.Ino {
			t.Errorf("after Do: thread %s in namespace %d, want %d", task.Name(), after.Ino, root.Ino)
		}
	}
}

func TestCleanupAfterKill(t *testing.T) {
	const prefix = "imp2t-crash"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+prefix)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %v", err)
	}
	names := strings.Fields(line)
	if len(names) != 2 || !strings.HasPrefix(names[0], prefix) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", line)
	}
	// What a bench run of nflog adds: an nft table, inside the namespace.
	if out, err := (NS{names[1]}).Command(context.Background(), "nft", "add", "table", "ip", "imp2bench").CombinedOutput(); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("nft add table: %v: %s", err, out)
	}
	// A live run's namespaces survive Cleanup.
	if removed, err := Cleanup(prefix); err != nil || len(removed) > 0 {
		t.Errorf("Cleanup with the owner alive: removed %v, %v", removed, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, n := range names {
		if !slices.Contains(namespaces(t), n) {
			t.Fatalf("namespace %s gone before Cleanup: the test proves nothing", n)
		}
	}
	left, err := RemoveLeftovers(prefix)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range left {
		lines = append(lines, l.String())
	}
	pid := cmd.Process.Pid
	want := []string{ // names: source, destination
		fmt.Sprintf("netns %s of a killed run (pid %d), with its link veth0", names[0], pid),
		fmt.Sprintf("netns %s of a killed run (pid %d), with its link veth0 and nft table ip imp2bench", names[1], pid),
	}
	slices.Sort(lines)
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("RemoveLeftovers said\n  %s\nwant\n  %s", strings.Join(lines, "\n  "), strings.Join(want, "\n  "))
	}
	for _, n := range names {
		if slices.Contains(namespaces(t), n) {
			t.Errorf("namespace %s left after Cleanup", n)
		}
	}
	if v := rootVeths(t, names...); len(v) > 0 {
		t.Errorf("veth left in the root namespace: %v", v)
	}
}

func TestOwnerPID(t *testing.T) {
	for _, c := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{"imp2b-123-1-src", 123, true},
		{"imp2b-123-1-dst", 123, true},
		{"imp2b-x-1-src", 0, false},
		{"imp2bb-123-1-src", 0, false},
		{"imp2b-123", 0, false},
		{"other", 0, false},
	} {
		pid, ok := ownerPID(c.name, "imp2b")
		if pid != c.pid || ok != c.ok {
			t.Errorf("ownerPID(%q) = %d, %v; want %d, %v", c.name, pid, ok, c.pid, c.ok)
		}
	}
}

// nsIno is the inode of the calling thread's network namespace.
func nsIno(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// DoFD runs fn in the namespace of the descriptor and returns the thread
// to where it was; a descriptor of something else is refused by name and
// fn does not run.
func TestDoFD(t *testing.T) {
	fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// A fresh namespace, held by the descriptor of an unshared thread.
	other := make(chan int)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			other <- -1
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
		}
		other <- fd
	}()
	nfd := <-other
	if nfd < 0 {
		t.FailNow()
	}
	defer unix.Close(nfd)
	var st unix.Stat_t
	if err := unix.Fstat(nfd, &st); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := nsIno(t)
	var inside uint64
	if err := DoFD(nfd, func() error { inside = nsIno(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != st.Ino || inside == before {
		t.Errorf("fn ran in namespace %d, want %d (the caller's is %d)", inside, st.Ino, before)
	}
	if after := nsIno(t); after != before {
		t.Errorf("thread left in namespace %d, want %d", after, before)
	}
	want := errors.New("fn's own")
	if err := DoFD(fd, func() error { return want }); err != want {
		t.Errorf("DoFD returned %v, want fn's error as it is", err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	ran := false
	err = DoFD(int(null.Fd()), func() error { ran = true; return nil })
	if name := fmt.Sprintf("enter fd %d", null.Fd()); err == nil || ran || !strings.Contains(err.Error(), name) {
		t.Errorf("DoFD(%s) = %v, fn ran %v; want an error naming the fd and fn not run", os.DevNull, err, ran)
	}
}
