package kmodtest

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/childproc"
)

// raceBindEnv makes the test binary the unprivileged racer of
// TestPortReuseRace on the port it names (raceBind).
const raceBindEnv = "IMP2_TEST_RACE_BIND"

const (
	nobody = 65534            // uid and gid of the unprivileged racer
	racing = 16 * time.Second // how long TestPortReuseRace races
)

func init() {
	childproc.Dispatch(raceBindEnv, func(arg string) {
		port, err := strconv.ParseUint(arg, 10, 32)
		if err == nil {
			err = raceBind(uint32(port), racing)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "racer: %v\n", err)
			os.Exit(1)
		}
	})
}

// startChild starts cmd (from childproc.Command) and returns a scanner of
// its standard output.
func startChild(t *testing.T, cmd *exec.Cmd) *bufio.Scanner {
	t.Helper()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return bufio.NewScanner(out)
}

// bindPort opens a netlink socket of unit bound to port (0: the kernel
// chooses), with a receive timeout so that a lost reply fails the caller
// instead of hanging it.
func bindPort(unit int, port uint32) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unit)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port})
	if err == nil {
		tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err == nil {
		// Events pile up while the owner waits for a reply: never let an
		// overrun error stand in for the reply.
		err = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// portConv is one conversation with the module on a raw socket; it counts
// the events that arrive while it waits for replies.
type portConv struct {
	fd     int
	seq    uint32
	events int
	buf    []byte
}

// send sends a control message to the module. It empties the receive
// queue first: the module answers with MSG_DONTWAIT, and a queue full of
// events would lose the reply.
func (p *portConv) send(typ, flags uint16) (uint32, error) {
	for {
		n, err := p.recv(unix.MSG_DONTWAIT)
		if err != nil {
			break
		}
		if h, err := imp2.ParseHeader(p.buf[:n]); err == nil && h.Type == imp2.TypeEvent {
			p.events++
		}
	}
	p.seq++
	msg := imp2.AppendControl(nil, typ, flags, p.seq, 0)
	for {
		err := unix.Sendto(p.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EINTR { // Go's preemption signal
			return p.seq, os.NewSyscallError("sendto", err)
		}
	}
}

// recv receives one datagram into p.buf, retrying after signals.
func (p *portConv) recv(flags int) (int, error) {
	if p.buf == nil {
		p.buf = make([]byte, 8192)
	}
	for {
		n, _, err := unix.Recvfrom(p.fd, p.buf, flags)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// await reads until the reply of type typ to seq and returns its payload.
func (p *portConv) await(typ uint16, seq uint32) ([]byte, error) {
	for {
		n, err := p.recv(0)
		if err != nil {
			return nil, fmt.Errorf("waiting for the reply of type %d to seq %d: %w", typ, seq, err)
		}
		h, err := imp2.ParseHeader(p.buf[:n])
		if err != nil {
			return nil, err
		}
		switch {
		case h.Type == imp2.TypeEvent:
			p.events++
		case h.Type == typ && h.Seq == seq:
			return p.buf[imp2.HeaderLen:h.Len], nil
		}
	}
}

// linger reads whatever arrives for d.
func (p *portConv) linger(d time.Duration) error {
	for end := time.Now().Add(d); ; {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, int(left.Milliseconds())+1); err == unix.EINTR {
			continue
		} else if err != nil {
			return os.NewSyscallError("poll", err)
		} else if n == 0 {
			return nil
		}
		n, err := p.recv(unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		if h, err := imp2.ParseHeader(p.buf[:n]); err == nil && h.Type == imp2.TypeEvent {
			p.events++
		}
	}
}

// register sends IMP2_U_PID with NLM_F_ACK and returns the acknowledged
// error code (0 or a negative errno).
func (p *portConv) register() (int32, error) {
	seq, err := p.send(imp2.TypeRegister, imp2.FlagRequest|imp2.FlagAck)
	if err != nil {
		return 0, err
	}
	b, err := p.await(unix.NLMSG_ERROR, seq)
	if err != nil {
		return 0, err
	}
	if len(b) < 4 {
		return 0, fmt.Errorf("ack of %d bytes", len(b))
	}
	return int32(binary.NativeEndian.Uint32(b)), nil
}

func (p *portConv) stats() (imp2.Stats, error) {
	seq, err := p.send(imp2.TypeGetStats, imp2.FlagRequest)
	if err != nil {
		return imp2.Stats{}, err
	}
	b, err := p.await(imp2.TypeStats, seq)
	if err != nil {
		return imp2.Stats{}, err
	}
	return imp2.ParseStats(b)
}

// raceBindResult is what the unprivileged racer saw on the contested port.
type raceBindResult struct {
	Refused        int32 // ack code of its own IMP2_U_PID: must be -EPERM
	Bound          int   // sockets it bound to the port
	Busy           int   // binds refused with EADDRINUSE
	Events         int   // IMP2_K_MSG received on the port
	SelfRegistered int   // IMP2_STATS replies with self_registered = 1
}

// raceBind is the unprivileged racer: for d it binds port as often
// as it can, asks for IMP2_STATS and keeps the port a moment, counting
// every event and every claim that it is registered. It prints one JSON
// raceBindResult.
func raceBind(port uint32, d time.Duration) error {
	var res raceBindResult
	// First show that this process may not register at all.
	fd, err := bindPort(imp2.DefaultFamily, 0)
	if err != nil {
		return err
	}
	p := portConv{fd: fd}
	res.Refused, err = p.register()
	unix.Close(fd)
	if err != nil {
		return err
	}
	for end := time.Now().Add(d); time.Now().Before(end); {
		fd, err := bindPort(imp2.DefaultFamily, port)
		if errors.Is(err, unix.EADDRINUSE) {
			res.Busy++
			continue
		}
		if err != nil {
			return err
		}
		res.Bound++
		p := portConv{fd: fd}
		st, err := p.stats()
		if err == nil {
			err = p.linger(500 * time.Microsecond)
		}
		unix.Close(fd)
		if err != nil {
			return err
		}
		if st.SelfRegistered {
			res.SelfRegistered++
		}
		res.Events += p.events
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// raceRegisterResult is what the privileged consumer saw.
type raceRegisterResult struct {
	Registered int // registrations acknowledged with 0
	Busy       int // binds refused with EADDRINUSE
	Lost       int // registrations gone by the next IMP2_STATS or 1 ms later
	Events     int
}

// raceRegister is the privileged consumer: until end it binds port,
// registers, checks at once and a millisecond later that it is still
// registered, and closes the socket without IMP2_CLOSE.
func raceRegister(port uint32, end time.Time) (raceRegisterResult, error) {
	var res raceRegisterResult
	for time.Now().Before(end) {
		fd, err := bindPort(imp2.DefaultFamily, port)
		if errors.Is(err, unix.EADDRINUSE) {
			res.Busy++
			continue
		}
		if err == nil {
			// Room for longer than a reply is awaited: the module
			// drops a reply it finds no room for (MSG_DONTWAIT),
			// and this goroutine shares the CPUs with the flood
			// (16 MiB hold ~20k events, 2-3 s of it in the VM).
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
			if err != nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			return res, err
		}
		p := portConv{fd: fd}
		err = func() error {
			code, err := p.register()
			if err != nil {
				return err
			}
			if code != 0 {
				return fmt.Errorf("registration %d acknowledged with %v", res.Registered+1, syscall.Errno(-code))
			}
			res.Registered++
			for check := 0; check < 2; check++ {
				if check == 1 {
					if err := p.linger(time.Millisecond); err != nil {
						return err
					}
				}
				st, err := p.stats()
				if err != nil {
					return err
				}
				if !st.SelfRegistered {
					res.Lost++
					return nil
				}
			}
			return nil
		}()
		unix.Close(fd)
		res.Events += p.events
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// TestPortReuseRace: a registration belongs to the socket that made it,
// not to its port id. A root consumer binds a fixed port, registers and
// closes, again and again, under an ICMP flood, while a process of uid
// 65534 binds the same port whenever it is free. The unprivileged sockets
// must get no event and never be told they are registered, and no
// registration of the root consumer may vanish while its socket is open
// (the late NETLINK_URELEASE of the port's previous socket used to remove
// it).
func TestPortReuseRace(t *testing.T) {
	const port = 0x494d5032 // "IMP2": no process of the guest has this pid
	base := stats(t, dial(t, imp2.Config{Ack: true}))
	gated := pfmemallocDrops(t)

	stop := make(chan struct{})
	flooded := make(chan int)
	go flood(stop, flooded)
	cmd := childproc.Command(t, raceBindEnv, strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out := startChild(t, cmd)
	root, rootErr := raceRegister(port, time.Now().Add(racing))
	var other raceBindResult
	var otherErr error
	if !out.Scan() {
		otherErr = errors.New("printed no result")
	} else {
		otherErr = json.Unmarshal(out.Bytes(), &other)
	}
	if err := cmd.Wait(); err != nil {
		otherErr = errors.Join(otherErr, err)
	}
	close(stop)
	sent := <-flooded
	gated = pfmemallocDrops(t) - gated

	t.Logf("%v of racing, %d echo requests: root: %d registrations, %d lost, %d events, %d busy binds; uid %d: %d binds, %d busy, %d events, %d self_registered, own registration refused with %v; events stopped at an unregistered socket (PFMemallocDrop): %d",
		racing, sent, root.Registered, root.Lost, root.Events, root.Busy, nobody,
		other.Bound, other.Busy, other.Events, other.SelfRegistered, syscall.Errno(-other.Refused), gated)
	if rootErr != nil {
		t.Fatalf("root consumer: %v", rootErr)
	}
	if otherErr != nil {
		t.Fatalf("unprivileged racer: %v", otherErr)
	}
	if other.Refused != -int32(unix.EPERM) {
		t.Fatalf("the racer's own registration was answered %v, want EPERM: it is not unprivileged", syscall.Errno(-other.Refused))
	}
	if root.Registered < 50 || other.Bound < 50 || root.Events == 0 {
		t.Fatalf("no race: %d registrations, %d unprivileged binds, %d events to the root consumer", root.Registered, other.Bound, root.Events)
	}
	if other.Events != 0 || other.SelfRegistered != 0 {
		t.Errorf("uid %d received %d events and was told %d times it is registered, want 0 and 0", nobody, other.Events, other.SelfRegistered)
	}
	if root.Lost != 0 {
		t.Errorf("%d of %d acknowledged registrations were gone while their socket was open, want 0", root.Lost, root.Registered)
	}
	// Every socket of the race is closed: only the checker is left.
	if s := stats(t, dial(t, imp2.Config{Ack: true})); s.Consumers != base.Consumers+1 {
		t.Errorf("%d consumers after the race, want %d", s.Consumers, base.Consumers+1)
	}
}

// pfmemallocDrops returns TcpExt PFMemallocDrop of this namespace: the
// module's events that the core dropped at a socket that is not
// registered (see imp2_tag() in kmod/imp2.c).
func pfmemallocDrops(t *testing.T) uint64 {
	t.Helper()
	lines := strings.Split(string(procNet(t, "netstat")), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == "PFMemallocDrop" {
				v, err := strconv.ParseUint(values[j], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatal("no TcpExt PFMemallocDrop in /proc/net/netstat")
	return 0
}
