package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes one boot.
type Config struct {
	Kernel        Kernel   // zero value: FindKernel
	KernelModules []string // loaded at boot with their dependencies, e.g. "veth", "nf_tables"
	Files         []File   // copied into the initramfs
	HostBinaries  []string // host programs with the libraries ldd names; they come before busybox's applets in PATH
	Script        string   // sh commands run after set-up; their status is the guest's
	ShareDir      string   // host folder mounted read-write at /share (9p); "" for none
	Memory        string   // qemu -m; default "1G"
	CPUs          int      // default 2
	// ICount is qemu's -icount option ("shift=auto", "shift=3,sleep=off"):
	// guest time from executed instructions instead of the host clock,
	// on one qemu thread. "" runs without.
	ICount string
	// SingleThread runs the vCPUs on one qemu thread whatever the
	// kernel (see MatrixKernel.SingleThreadTCG), for a boot that flips
	// static keys under traffic on purpose: multi-threaded TCG took an
	// "int3" oops in ip_rcv on 6.1 too, in 1 run of the module-reload
	// test in a clean-clone CI (2026-12-02).
	SingleThread bool
	Timeout      time.Duration
	// Console receives the guest console line by line as it arrives,
	// without the serial line's carriage returns and the firmware's
	// terminal escapes; may be nil.
	Console io.Writer
}

// File is a host file placed in the guest.
type File struct {
	Guest string // absolute guest path
	Host  string
	Mode  uint32 // permission bits; 0 means 0755
}

// Result is what a boot produced.
type Result struct {
	ExitCode int      // status of Config.Script inside the guest
	Dmesg    []string // kernel log lines that signal a bug (WARNING, BUG, Oops, ...)
	Console  []byte   // the whole console output
	Elapsed  time.Duration
}

// Console markers written by the guest's /init.
const (
	markExit  = "IMP2-VM-EXIT "
	markDmesg = "IMP2-VM-DMESG "
	markError = "IMP2-VM-ERROR "
)

// dmesgProblems matches kernel log lines that mean a bug in what we ran.
// stallTimeout raises the RCU CPU stall timeout from the default 21 s to
// 120 s. Under software emulation on a loaded 2-core host a vCPU thread can
// go unscheduled for tens of seconds (6.12 logged "rcu_preempt
// self-detected stall ... timer wakeup didn't happen for 9572 jiffies"
// while the host's load was 4-6): the host starving the guest, not a guest
// CPU stuck in the module. A guest really stuck that long still fails its
// test by its deadline, and stalls beyond 120 s are still reported.
const stallTimeout = "rcupdate.rcu_cpu_stall_timeout=120"

const dmesgProblems = `WARNING:|BUG:|Oops|Call Trace|general protection|kmemleak|UBSAN|KASAN|refcount_t|list_(add|del) corruption|rcu.*detected stall|scheduling while atomic|sleeping function called`

// guestInit starts with an empty line: the firmware may still print after
// its terminal reset (seen: the last dot of "Booting from ROM..."), and the
// guest's first line must not be glued to that.
const guestInit = `#!/bin/busybox sh
/bin/busybox echo
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /share
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
while read m; do
	insmod "/lib/vm-modules/$m" || echo "` + markError + `insmod $m failed"
done < /etc/vm-modules
if [ -s /etc/vm-share ]; then
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 share /share || echo "` + markError + `mount of the 9p share failed"
fi
cd /
sh /etc/vm-script
rc=$?
sync
dmesg | grep -E '` + dmesgProblems + `' | while read -r l; do echo "` + markDmesg + `$l"; done
echo "` + markExit + `$rc"
poweroff -f
`

// Run boots the guest, runs cfg.Script and returns when the guest powers
// off, the timeout passes or ctx is done. qemu never outlives Run: it runs
// in its own process group, is killed on every way out and dies with us.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := CheckHost(); err != nil {
		return nil, err
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "imp2-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	initrd := filepath.Join(dir, "initramfs.cpio")
	if err := cfg.writeInitramfs(initrd); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	return cfg.runQemu(ctx, cfg.qemuArgs(initrd))
}

// setDefaults fills what cfg leaves zero: the installed kernel, 1 GiB,
// two vCPUs, five minutes.
func (cfg *Config) setDefaults() error {
	if cfg.Kernel.Version == "" {
		k, err := FindKernel()
		if err != nil {
			return err
		}
		cfg.Kernel = k
	}
	if cfg.Memory == "" {
		cfg.Memory = "1G"
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	return nil
}

// qemuArgs is the command line booting cfg's kernel with initrd.
func (cfg *Config) qemuArgs(initrd string) []string {
	accel := cfg.Kernel.accel()
	if cfg.ICount != "" || cfg.SingleThread {
		accel = "tcg,thread=single" // qemu's -icount needs it
	}
	args := []string{
		"-accel", accel, "-smp", strconv.Itoa(cfg.CPUs), "-m", cfg.Memory,
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", cfg.Kernel.Image, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet rdinit=/init " + stallTimeout,
	}
	if cfg.ICount != "" {
		args = append(args, "-icount", cfg.ICount)
	}
	if cfg.ShareDir != "" {
		args = append(args, "-virtfs", "local,path="+cfg.ShareDir+",mount_tag=share,security_model=none")
	}
	return args
}

// runQemu runs qemu with args until the guest powers off or ctx is done,
// reading the console as it goes.
func (cfg *Config) runQemu(ctx context.Context, args []string) (*Result, error) {
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: starting qemu: %w", err)
	}
	res := &Result{ExitCode: -1}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res.Console, res.ExitCode, res.Dmesg = readConsole(stdout, cfg.Console)
	}()
	done := make(chan error, 1)
	go func() {
		wg.Wait() // all console output read before Wait closes the pipe
		done <- cmd.Wait()
	}()

	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		res.Elapsed = time.Since(start)
		return res, fmt.Errorf("vm: guest did not finish within %v (%w); console tail:\n%s", cfg.Timeout, ctx.Err(), tail(res.Console, 20))
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything qemu left behind
	res.Elapsed = time.Since(start)
	if res.ExitCode < 0 {
		return res, fmt.Errorf("vm: guest stopped without reporting a status (qemu: %v %s); console tail:\n%s",
			waitErr, strings.TrimSpace(stderr.String()), tail(res.Console, 30))
	}
	return res, nil
}

// readConsole copies the console to w and picks out the markers.
func readConsole(r io.Reader, w io.Writer) (all []byte, exit int, dmesg []string) {
	exit = -1
	var buf bytes.Buffer
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			buf.Write(line)
			// A terminal reset ends the firmware's unterminated line: the
			// guest's next line must not be glued to it.
			clean := terminalReset.ReplaceAll(line, []byte("\n"))
			clean = terminalNoise.ReplaceAll(clean, nil)
			for _, l := range strings.SplitAfter(string(clean), "\n") {
				if strings.TrimSpace(l) == "" {
					continue
				}
				if w != nil {
					io.WriteString(w, l)
				}
				s := strings.TrimRight(l, "\n")
				switch {
				case strings.HasPrefix(s, markExit):
					if n, err := strconv.Atoi(strings.TrimPrefix(s, markExit)); err == nil {
						exit = n
					}
				case strings.HasPrefix(s, markDmesg):
					dmesg = append(dmesg, strings.TrimPrefix(s, markDmesg))
				}
			}
		}
		if err != nil {
			return buf.Bytes(), exit, dmesg
		}
	}
}

// What SeaBIOS and the serial line add to the guest's output: a terminal
// reset (ESC c), carriage returns and CSI sequences.
var (
	terminalReset = regexp.MustCompile("\x1bc")
	terminalNoise = regexp.MustCompile("\r|\x1b\\[[0-9;?]*[A-Za-z]")
)

// ShellQuote quotes args for the guest's sh, for building Config.Script.
func ShellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// ConsoleTail returns the last n lines of the console, for error messages.
func (r *Result) ConsoleTail(n int) string { return tail(r.Console, n) }

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (cfg *Config) writeInitramfs(path string) error {
	r := newInitramfs()
	r.addFile("/bin/busybox", "/bin/busybox", 0o755)
	r.addData("/init", []byte(guestInit), 0o755)
	r.addData("/etc/vm-script", []byte(cfg.Script+"\n"), 0o644)
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/share"} {
		r.addDir(d)
	}
	share := ""
	if cfg.ShareDir != "" {
		share = "share\n"
	}
	r.addData("/etc/vm-share", []byte(share), 0o644)

	mods, err := cfg.Kernel.resolveModules(cfg.KernelModules)
	if err != nil {
		return err
	}
	if cfg.ShareDir != "" {
		nine, err := cfg.Kernel.resolveModules([]string{"virtio_pci", "9pnet_virtio", "9p"})
		if err != nil {
			return err
		}
		mods = append(nine, mods...)
	}
	var list strings.Builder
	seen := map[string]bool{}
	for _, m := range mods {
		if seen[m] {
			continue
		}
		seen[m] = true
		name, data, err := moduleData(filepath.Join(cfg.Kernel.Modules, m))
		if err != nil {
			return err
		}
		r.addData("/lib/vm-modules/"+name, data, 0o644)
		list.WriteString(name + "\n")
	}
	r.addData("/etc/vm-modules", []byte(list.String()), 0o644)

	for _, f := range cfg.Files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		r.addFile(f.Guest, f.Host, mode)
	}
	for _, b := range cfg.HostBinaries {
		if err := addHostBinary(r, b); err != nil {
			return err
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := r.writeTo(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// addHostBinary copies a host program and the shared libraries it links to
// the same paths in the guest, so tools such as ip or nft run there as they
// do on the host.
func addHostBinary(r *initramfs, name string) error {
	p, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("vm: host program %s: %w", name, err)
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	r.addFile(p, p, 0o755)
	if base := "/usr/bin/" + filepath.Base(name); base != p {
		r.addSymlink(base, p)
	}
	out, err := exec.Command("ldd", p).Output()
	if err != nil {
		// "not a dynamic executable": nothing more to copy.
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil
		}
		return fmt.Errorf("vm: ldd %s: %w", p, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			return fmt.Errorf("vm: library %s of %s: %w", lib, p, err)
		}
		r.addFile(real, real, 0o755)
		if real != lib {
			r.addSymlink(lib, real)
		}
	}
	return nil
}
