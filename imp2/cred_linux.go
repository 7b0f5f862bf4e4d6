//go:build linux

package imp2

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Server's admission check, the user-space counterpart of the module's
// netlink_net_capable(skb, CAP_NET_ADMIN).
//
// The kernel gives a user-space receiver the sender's credentials
// (SCM_CREDENTIALS: its pid and uid, checked by the kernel), not its
// capabilities, so the Server reads them from /proc at registration:
//
//  1. the registering port's socket inode, from /proc/net/netlink of the
//     Server's network namespace;
//  2. that the sender pid holds that socket (a /proc/PID/fd link to
//     socket:[inode]). This ties the check to the socket that registers:
//     a pid reused since the send, or a pid that means another process
//     because the sender lives in another pid namespace, does not hold it
//     and is refused;
//  3. the pid's CapEff and user namespace, judged as the kernel's
//     cap_capable() does against the user namespace owning the Server's
//     network namespace: CAP_NET_ADMIN in that namespace or an ancestor,
//     or being the owner of a child namespace of the sender's.
//
// Everything is read through one /proc/PID directory fd, so all of it
// describes one process. A registration whose sender has exited before the
// check (or has closed the socket) is refused: nothing can vouch for it,
// and nothing could be sent to it unless another process shares its
// socket, whose rights are unknown. What remains: the module also requires the
// socket's opener to have had the capability (file_ns_capable), which
// /proc does not show; and a Server that may not read another user's
// /proc/PID/fd (no CAP_SYS_PTRACE, different uid) refuses that user.

const capNetAdmin = 12

// netlinkSockets reads /proc/net/netlink through f (opened in the Server's
// network namespace) and returns the socket inode of every bound port of
// family.
func netlinkSockets(f *os.File, family int) (map[uint32]uint64, error) {
	// pread from 0 restarts the seq_file; the file stays open so that it
	// keeps describing the Server's namespace.
	sc := bufio.NewScanner(io.NewSectionReader(f, 0, 1<<62))
	m := map[uint32]uint64{}
	first := true
	for sc.Scan() {
		if first { // column names
			first = false
			continue
		}
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		fs := bytes.Fields(sc.Bytes())
		if len(fs) < 10 {
			continue
		}
		eth, err1 := strconv.Atoi(string(fs[1]))
		pid, err2 := strconv.ParseUint(string(fs[2]), 10, 32)
		ino, err3 := strconv.ParseUint(string(fs[9]), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || eth != family || pid == 0 {
			continue
		}
		m[uint32(pid)] = ino
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return m, nil
}

// nsID identifies a namespace.
type nsID struct{ dev, ino uint64 }

// userNS is one user namespace of the chain that decides CAP_NET_ADMIN
// over the Server's network namespace.
type userNS struct {
	id    nsID
	owner uint32 // uid of its creator, as this process sees it
}

// ownerChain returns the user namespace owning the network namespace
// netns, then its ancestors as far as this process may see them.
func ownerChain(netns int) ([]userNS, error) {
	fd, err := unix.IoctlRetInt(netns, unix.NS_GET_USERNS)
	if err != nil {
		return nil, os.NewSyscallError("ioctl NS_GET_USERNS", err)
	}
	var chain []userNS
	for {
		var st unix.Stat_t
		var uid uint32
		err := unix.Fstat(fd, &st)
		if err == nil {
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.NS_GET_OWNER_UID, uintptr(unsafe.Pointer(&uid)))
			if e != 0 {
				err = os.NewSyscallError("ioctl NS_GET_OWNER_UID", e)
			}
		}
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		chain = append(chain, userNS{nsID{st.Dev, st.Ino}, uid})
		parent, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		unix.Close(fd)
		if err != nil { // the initial namespace, or one above ours (EPERM)
			return chain, nil
		}
		fd = parent
	}
}

// capable is cap_capable(sender, chain[0], CAP_NET_ADMIN) for a sender in
// user namespace ns with effective uid euid and effective capabilities
// capEff.
func capable(chain []userNS, ns nsID, euid uint32, capEff uint64) bool {
	for i, u := range chain {
		if u.id == ns {
			return capEff&(1<<capNetAdmin) != 0
		}
		// The owner of a child of the sender's namespace has every
		// capability in it.
		if i+1 < len(chain) && chain[i+1].id == ns && u.owner == euid {
			return true
		}
	}
	return false
}

var errNotPrivileged = errors.New("no CAP_NET_ADMIN")

// checkPrivilege returns nil if process pid holds the socket with inode
// ino and has CAP_NET_ADMIN over the namespace chain[0] owns; otherwise an
// error that says which part failed.
func checkPrivilege(chain []userNS, pid uint32, ino uint64) error {
	if ino == 0 {
		return errors.New("its socket is not in /proc/net/netlink")
	}
	dir, err := unix.Open("/proc/"+strconv.FormatUint(uint64(pid), 10), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sender pid %d: %w", pid, err)
	}
	defer unix.Close(dir)
	if err := holdsSocket(dir, ino); err != nil {
		return fmt.Errorf("sender pid %d: %w", pid, err)
	}
	euid, capEff, err := readStatus(dir)
	if err != nil {
		return fmt.Errorf("sender pid %d: %w", pid, err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, "ns/user", &st, 0); err != nil {
		return fmt.Errorf("sender pid %d: user namespace: %w", pid, err)
	}
	if !capable(chain, nsID{st.Dev, st.Ino}, euid, capEff) {
		return fmt.Errorf("sender pid %d (euid %d): %w", pid, euid, errNotPrivileged)
	}
	return nil
}

func holdsSocket(dir int, ino uint64) error {
	fd, err := unix.Openat(dir, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("its file descriptors: %w", err)
	}
	f := os.NewFile(uintptr(fd), "fd")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("its file descriptors: %w", err)
	}
	want := "socket:[" + strconv.FormatUint(ino, 10) + "]"
	buf := make([]byte, 64)
	for _, name := range names {
		n, err := unix.Readlinkat(fd, name, buf)
		if err == nil && string(buf[:n]) == want {
			return nil
		}
	}
	return fmt.Errorf("holds no descriptor of the registering socket (inode %d)", ino)
}

// readStatus returns the effective uid and CapEff of /proc/PID/status.
func readStatus(dir int) (euid uint32, capEff uint64, err error) {
	fd, err := unix.Openat(dir, "status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("status: %w", err)
	}
	f := os.NewFile(uintptr(fd), "status")
	defer f.Close()
	var haveUID, haveCap bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := bytes.Cut(sc.Bytes(), []byte{':'})
		fs := bytes.Fields(v)
		switch {
		case string(k) == "Uid" && len(fs) >= 2:
			u, err := strconv.ParseUint(string(fs[1]), 10, 32)
			euid, haveUID = uint32(u), err == nil
		case string(k) == "CapEff" && len(fs) == 1:
			capEff, err = strconv.ParseUint(string(fs[0]), 16, 64)
			haveCap = err == nil
		}
	}
	if !haveUID || !haveCap {
		return 0, 0, fmt.Errorf("status has no Uid or CapEff line (%v)", sc.Err())
	}
	return euid, capEff, nil
}
