package vm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The cache the harness owns: an apt state of its own (sources list,
// package lists, downloads), the unpacked kernels of the matrix and the
// build roots. Nothing outside it changes; what apt fetches is verified
// against the archive's signed indexes with the system's Debian keyring.
//
//	<cache>/apt/                 sources.list, lists/, cache/
//	<cache>/kernels/<release>/   the packages unpacked with dpkg-deb -x
//	<cache>/buildroot/<suite>/   a mmdebstrap root with the suite's gcc
const (
	debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	debianMirror  = "http://deb.debian.org/debian"
	completeStamp = ".imp2-complete" // written last: its content says what the folder holds
)

// buildRootPackages are what building a module in a build root needs:
// the compiler the headers name, make, libc headers, pahole for module
// BTF, and the libraries the suite's kbuild tools (modpost, objtool) link.
var buildRootPackages = map[string][]string{
	"trixie": {"gcc-14", "make", "libc6-dev", "pahole", "libelf1t64", "libssl3t64", "zlib1g"},
}

// CacheDir is IMP2_CACHE_DIR, else $XDG_CACHE_HOME/imp2 (~/.cache/imp2).
func CacheDir() (string, error) {
	if d := os.Getenv("IMP2_CACHE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("vm: no cache folder (set IMP2_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "imp2"), nil
}

// lockCache holds an exclusive lock on the cache until the returned
// function runs: several test processes (or helpers sharing a machine)
// must not unpack into the same folder at once.
func lockCache(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("vm: locking the cache %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// stamp is what a complete kernel folder records: the pinned packages.
func (m MatrixKernel) stamp() string {
	var b strings.Builder
	for _, p := range m.Packages {
		fmt.Fprintf(&b, "%s=%s\n", p, m.Version)
	}
	return b.String()
}

// Fetch returns the kernel m pins, ready to boot and build against. The
// kernel installed on this machine is used when it is exactly m; otherwise
// the packages are fetched and unpacked into the cache once, and later
// calls only check the cache's stamp. A kernel that needs a build root
// gets it too (EnsureBuildRoot).
func (m MatrixKernel) Fetch() (Kernel, error) {
	k, err := m.fetch()
	if err != nil {
		return Kernel{}, err
	}
	k.SingleThreadTCG = m.SingleThreadTCG
	if m.BuildRoot != "" {
		if k.BuildRoot, err = EnsureBuildRoot(m.BuildRoot); err != nil {
			return Kernel{}, err
		}
	}
	return k, nil
}

func (m MatrixKernel) fetch() (Kernel, error) {
	if k, ok := m.installed(); ok {
		return k, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return Kernel{}, err
	}
	dir := filepath.Join(cache, "kernels", m.Release)
	if k, ok := m.cached(dir); ok {
		return k, nil
	}
	unlock, err := lockCache(cache)
	if err != nil {
		return Kernel{}, err
	}
	defer unlock()
	if k, ok := m.cached(dir); ok { // another process fetched it meanwhile
		return k, nil
	}
	fmt.Fprintf(os.Stderr, "vm: fetching kernel %s (%s %s) into %s\n", m.Name, m.Release, m.Version, dir)
	start := time.Now()
	debs, err := os.MkdirTemp(cache, "debs-")
	if err != nil {
		return Kernel{}, err
	}
	defer os.RemoveAll(debs)
	want := make([]string, len(m.Packages))
	for i, p := range m.Packages {
		want[i] = p + "=" + m.Version
	}
	if err := aptDownload(cache, debs, want); err != nil {
		return Kernel{}, fmt.Errorf("vm: kernel %s: %w", m.Name, err)
	}
	part := dir + ".part"
	if err := os.RemoveAll(part); err != nil {
		return Kernel{}, err
	}
	if err := os.MkdirAll(part, 0o755); err != nil {
		return Kernel{}, err
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(files) != len(m.Packages) {
		return Kernel{}, fmt.Errorf("vm: kernel %s: apt-get download left %d packages in %s, want %d", m.Name, len(files), debs, len(m.Packages))
	}
	for _, f := range files {
		if out, err := exec.Command("dpkg-deb", "-x", f, part).CombinedOutput(); err != nil {
			return Kernel{}, fmt.Errorf("vm: unpacking %s: %w\n%s", filepath.Base(f), err, out)
		}
	}
	if err := m.fixUp(part, dir); err != nil {
		return Kernel{}, fmt.Errorf("vm: kernel %s: %w", m.Name, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return Kernel{}, err
	}
	if err := os.Rename(part, dir); err != nil {
		return Kernel{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, completeStamp), []byte(m.stamp()), 0o644); err != nil {
		return Kernel{}, err
	}
	fmt.Fprintf(os.Stderr, "vm: kernel %s fetched and unpacked in %.1f s\n", m.Name, time.Since(start).Seconds())
	k, ok := m.cached(dir)
	if !ok {
		return Kernel{}, fmt.Errorf("vm: kernel %s: %s lacks an image, modules or headers after unpacking", m.Name, dir)
	}
	return k, nil
}

// installed reports the host's own kernel when its packages are exactly m.
func (m MatrixKernel) installed() (Kernel, bool) {
	k := Kernel{Name: m.Name, Version: m.Release, Image: "/boot/vmlinuz-" + m.Release,
		Headers: "/usr/src/linux-headers-" + m.Release, Modules: "/lib/modules/" + m.Release}
	if k.check() != nil {
		return Kernel{}, false
	}
	for _, p := range m.Packages {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", p).Output()
		if err != nil || string(out) != m.Version {
			return Kernel{}, false
		}
	}
	return k, true
}

// cached returns the kernel unpacked in dir if its stamp says it is m.
func (m MatrixKernel) cached(dir string) (Kernel, bool) {
	b, err := os.ReadFile(filepath.Join(dir, completeStamp))
	if err != nil || string(b) != m.stamp() {
		return Kernel{}, false
	}
	k := Kernel{Name: m.Name, Version: m.Release, Root: dir,
		Headers: filepath.Join(dir, "usr/src/linux-headers-"+m.Release),
		Modules: filepath.Join(dir, "lib/modules", m.Release)}
	// Up to 6.12 the image is /boot/vmlinuz-<release>; Debian's split
	// packages (6.18 on) put it beside the modules in /usr/lib.
	k.Image = filepath.Join(dir, "boot/vmlinuz-"+m.Release)
	if _, err := os.Stat(k.Image); err != nil {
		k.Image = filepath.Join(k.Modules, "vmlinuz")
	}
	return k, k.check() == nil
}

// fixUp makes the unpacked tree part (to be renamed final) usable where it
// lies: what a package's maintainer scripts would have done on install.
func (m MatrixKernel) fixUp(part, final string) error {
	// Trixie's packages are merged-/usr; depmod and Kernel.Modules look
	// in /lib/modules.
	if _, err := os.Lstat(filepath.Join(part, "lib")); os.IsNotExist(err) {
		if err := os.Symlink("usr/lib", filepath.Join(part, "lib")); err != nil {
			return err
		}
	}
	// modules.dep and friends are made by depmod in the package's
	// postinst; resolveModules reads them.
	if out, err := exec.Command("depmod", "-b", part, m.Release).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod -b %s %s: %w\n%s", part, m.Release, err, out)
	}
	// The headers' Makefile includes the -common tree (and from 6.18 sets
	// KBUILD_OUTPUT) by absolute /usr/src paths: point them into the cache.
	mk := filepath.Join(part, "usr/src/linux-headers-"+m.Release, "Makefile")
	b, err := os.ReadFile(mk)
	if err != nil {
		return err
	}
	b = bytes.ReplaceAll(b, []byte(" /usr/src/"), []byte(" "+final+"/usr/src/"))
	b = bytes.ReplaceAll(b, []byte("=/usr/src/"), []byte("="+final+"/usr/src/"))
	return os.WriteFile(mk, b, 0o644)
}

// aptDownload fetches pkgs (name=version) into dir with the cache's own
// apt state. apt checks each file against the archive's signed indexes.
// The indexes are refreshed when the sources list changed, or once when a
// pinned package is not in them.
func aptDownload(cache, dir string, pkgs []string) error {
	aptDir := filepath.Join(cache, "apt")
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(aptDir, d), 0o755); err != nil {
			return err
		}
	}
	sources := sourcesList()
	list := filepath.Join(aptDir, "sources.list")
	status := filepath.Join(aptDir, "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		return err
	}
	args := []string{
		"-o", "Dir::Etc::SourceList=" + list,
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(aptDir, "sources.list.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(aptDir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(aptDir, "cache"),
		"-o", "Dir::State::status=" + status,
		"-o", "APT::Sandbox::User=root",
		"-o", "Acquire::Languages=none",
		"-q",
	}
	apt := func(cwd string, a ...string) error {
		cmd := exec.Command("apt-get", append(append([]string{}, args...), a...)...)
		cmd.Dir = cwd
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", a[0], err, tail(out, 15))
		}
		return nil
	}
	updated := filepath.Join(aptDir, "lists", ".imp2-sources")
	update := func() error {
		if err := os.WriteFile(list, []byte(sources), 0o644); err != nil {
			return err
		}
		if err := apt(aptDir, "update"); err != nil {
			return fmt.Errorf("%w(a NO_PUBKEY error means the debian-archive-keyring package is too old for these suites)", err)
		}
		return os.WriteFile(updated, []byte(sources), 0o644)
	}
	if b, err := os.ReadFile(updated); err != nil || string(b) != sources {
		if err := update(); err != nil {
			return err
		}
	} else if err := apt(dir, append([]string{"download"}, pkgs...)...); err == nil {
		return nil
	} else if err := update(); err != nil {
		return err
	}
	return apt(dir, append([]string{"download"}, pkgs...)...)
}

// sourcesList is the cache's apt sources: every suite the matrix names.
func sourcesList() string {
	seen := map[string]bool{}
	var lines []string
	for _, m := range Matrix {
		if seen[m.Suite] {
			continue
		}
		seen[m.Suite] = true
		lines = append(lines, fmt.Sprintf("deb [signed-by=%s] %s %s main", debianKeyring, suiteURIs[m.Suite], m.Suite))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// EnsureBuildRoot returns a root folder of the Debian suite with the
// compiler and tools buildRootPackages names, made with mmdebstrap once
// into the cache and reused.
func EnsureBuildRoot(suite string) (string, error) {
	pkgs, ok := buildRootPackages[suite]
	if !ok {
		return "", fmt.Errorf("vm: no build root recipe for suite %q", suite)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "buildroot", suite)
	want := strings.Join(pkgs, "\n") + "\n"
	ready := func() bool {
		b, err := os.ReadFile(filepath.Join(dir, completeStamp))
		return err == nil && string(b) == want
	}
	if ready() {
		return dir, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", &MissingError{What: "mmdebstrap (to make the " + suite + " build root)", Package: "mmdebstrap"}
	}
	unlock, err := lockCache(cache)
	if err != nil {
		return "", err
	}
	defer unlock()
	if ready() {
		return dir, nil
	}
	fmt.Fprintf(os.Stderr, "vm: creating the %s build root in %s (once)\n", suite, dir)
	start := time.Now()
	part := dir + ".part"
	if err := os.RemoveAll(part); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("mmdebstrap", "--quiet", "--variant=minbase", "--include="+strings.Join(pkgs, ","),
		"--keyring="+debianKeyring, suite, part, debianMirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("vm: mmdebstrap of %s: %w\n%s", suite, err, tail(out, 20))
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(part, dir); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, completeStamp), []byte(want), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "vm: %s build root made in %.1f s\n", suite, time.Since(start).Seconds())
	return dir, nil
}
