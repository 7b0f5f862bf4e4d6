package kmodtest

import (
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

// controlEnv makes the test binary a sender of control messages to the
// unit it names (sendControl), for TestUserSockUnitRefused.
const controlEnv = "IMP2_TEST_CONTROL_UNIT"

func init() {
	childproc.Dispatch(controlEnv, func(arg string) {
		unit, err := strconv.Atoi(arg)
		if err == nil {
			err = sendControl(unit, 2*time.Minute)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "control sender: %v\n", err)
			os.Exit(1)
		}
	})
}

// sendControl floods unit with control messages from four sockets for d,
// or until killed: datagrams of IMP2_U_PID, 64 IMP2_GET_STATS and
// IMP2_CLOSE, each of which keeps the module's input callback busy for a
// while. Replies are drained and errors (no module on the unit) ignored:
// whenever the module is loaded, the same sockets reach it.
func sendControl(unit int, d time.Duration) error {
	msg := imp2.AppendControl(nil, imp2.TypeRegister, imp2.FlagRequest|imp2.FlagAck, 1, 0)
	for i := 0; i < 64; i++ {
		msg = imp2.AppendControl(msg, imp2.TypeGetStats, imp2.FlagRequest, 2, 0)
	}
	msg = imp2.AppendControl(msg, imp2.TypeClose, imp2.FlagRequest|imp2.FlagAck, 3, 0)
	end := time.Now().Add(d)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			fd, err := bindPort(unit, 0)
			errs <- err
			if err != nil {
				return
			}
			buf := make([]byte, 8192)
			for time.Now().Before(end) {
				unix.Sendto(fd, msg, unix.MSG_DONTWAIT, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
				for {
					if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
						break
					}
				}
			}
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	time.Sleep(time.Until(end))
	return nil
}

// TestUserSockUnitRefused: NETLINK_USERSOCK (unit 2) is the kernel's own,
// and its user sockets neither need the module nor pin it. A message they
// send to port 0 while the module unloads ran imp2_rcv() on freed state
// (the old module oopsed in netlink_unicast), and one sent while it loads
// can hit the core's BUG() in netlink_data_ready. So loading on unit 2 is
// refused with a message saying why, here under the control traffic that
// broke it; the old module loaded, and registering and unloading under
// that traffic oopsed.
func TestUserSockUnitRefused(t *testing.T) {
	run(t, "rmmod", "imp2")
	defer run(t, "insmod", guestModule)
	cmd := startControl(t)
	for round := 0; round < 8; round++ {
		out, err := exec.Command("insmod", guestModule, "unit=2").CombinedOutput()
		if err == nil {
			t.Errorf("round %d: insmod unit=2 succeeded, want it refused", round)
			// What a user of it would do next: register, then unload
			// while the control traffic goes on.
			c, err := imp2.Dial(imp2.Config{Family: imp2.UserSockFamily, Ack: true})
			time.Sleep(time.Duration(10*round) * time.Millisecond)
			run(t, "rmmod", "imp2")
			if err == nil {
				c.Close()
			}
		} else if round == 0 {
			t.Logf("insmod unit=2: %v: %s", err, strings.TrimSpace(string(out)))
		}
		if bad := dmesgProblems(t); len(bad) > 0 {
			t.Fatalf("round %d: the kernel logged under control traffic on unit 2:\n%s", round, strings.Join(bad, "\n"))
		}
	}
	const why = "imp2: unit 2 (NETLINK_USERSOCK) refused: its sockets do not hold the module"
	if log := run(t, "dmesg"); !strings.Contains(log, why) {
		t.Errorf("the kernel log does not say why unit 2 was refused (want %q)", why)
	}
	if mods := run(t, "cat", "/proc/modules"); strings.Contains(mods, "imp2 ") {
		t.Errorf("imp2 is loaded after the refusals:\n%s", mods)
	}
	cmd.Process.Kill()
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the control sender ended on its own (%v) before it was killed", err)
	}
}

// startControl starts the control sender on unit 2; it is killed when the
// test ends.
func startControl(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := childproc.Command(t, controlEnv, strconv.Itoa(imp2.UserSockFamily))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}
