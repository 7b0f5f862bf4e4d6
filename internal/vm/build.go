package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RepoRoot finds the checkout's top folder from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "kmod", "imp2_uapi.h")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("vm: not inside the imp2 checkout")
		}
		dir = parent
	}
}

// BuildModule builds kmod/imp2.ko against k's headers and returns its path.
// vars are extra make variables (NAME=value), e.g. IMP2_TEST_DELAY_NS for
// a test-only variant (kmod/Makefile).
func BuildModule(root string, k Kernel, vars ...string) (string, error) {
	return buildModule(filepath.Join(root, "kmod"), k, vars...)
}

// buildModule runs kmod/Makefile in dir (the kmod folder or a copy of it)
// against k's headers: on the host, or chrooted into k.BuildRoot in a
// mount namespace of its own where the kernel's unpacked tree and dir are
// bound at their host paths (the headers name their paths absolutely) and
// /proc is mounted (objtool reads it). The mounts end with the namespace.
func buildModule(dir string, k Kernel, vars ...string) (string, error) {
	if _, err := exec.LookPath("make"); err != nil {
		return "", &MissingError{What: "make", Package: "make"}
	}
	cmd := exec.Command("make", append([]string{"-s", "-C", dir, "KDIR=" + k.Headers}, vars...)...)
	if k.BuildRoot != "" {
		for _, p := range []string{k.Root, dir} {
			if err := os.MkdirAll(filepath.Join(k.BuildRoot, p), 0o755); err != nil {
				return "", err
			}
		}
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c",
			`set -e; mount --bind "$1" "$3$1"; mount --bind "$2" "$3$2"; mount -t proc proc "$3/proc"; b=$3 d=$2 h=$4; shift 4; exec chroot "$b" make -s -C "$d" KDIR="$h" "$@"`,
			"sh", k.Root, dir, k.BuildRoot, k.Headers}, vars...)...)
		// The mounts ended with the namespace: drop the empty mount
		// point of this build folder (and its scratch parent when empty),
		// so the build root does not collect one per build.
		defer func() {
			// A top-level parent (the root's own /tmp) stays.
			if os.Remove(filepath.Join(k.BuildRoot, dir)) == nil && strings.Count(filepath.Dir(dir), "/") > 1 {
				os.Remove(filepath.Join(k.BuildRoot, filepath.Dir(dir)))
			}
		}()
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		where := ""
		if k.BuildRoot != "" {
			where = " in the build root " + k.BuildRoot
		}
		return "", fmt.Errorf("vm: building imp2.ko against %s%s: %w\n%s", k.Headers, where, err, out)
	}
	return filepath.Join(dir, "imp2.ko"), nil
}

// BuildGo builds a static Go binary (CGO_ENABLED=0) for the guest. With
// test set it builds the package's test binary instead.
func BuildGo(root, pkg, out string, test bool) error {
	if !test {
		return BuildGoFlags(root, pkg, out)
	}
	return goBuild(root, []string{"test", "-c", "-trimpath", "-o", out, pkg})
}

// BuildGoFlags is BuildGo of a binary with extra go build flags (-tags,
// -ldflags: test variants).
func BuildGoFlags(root, pkg, out string, flags ...string) error {
	args := append(append([]string{"build", "-trimpath"}, flags...), "-o", out, pkg)
	return goBuild(root, args)
}

func goBuild(root string, args []string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm: go %v: %w\n%s", args, err, b)
	}
	return nil
}

// Checkout is what a VM run builds from the checkout: the kernel, the
// module built against its headers, and a scratch folder for the guest's
// binaries with an empty share folder in it (Config.ShareDir).
type Checkout struct {
	Root   string
	Kernel Kernel
	Module string // imp2.ko, built in Dir
	Dir    string // scratch; Close removes it
	Share  string // Dir/share
}

// PrepareCheckout finds the checkout and the kernel (FindKernel), builds
// the module and makes the scratch folder, named after prefix.
func PrepareCheckout(prefix string) (*Checkout, error) {
	return PrepareCheckoutKernel(prefix, "")
}

// PrepareCheckoutKernel is PrepareCheckout on the matrix kernel called
// name (fetched when needed); "" means FindKernel's.
func PrepareCheckoutKernel(prefix, name string) (*Checkout, error) {
	k, err := kernelNamed(name)
	if err != nil {
		return nil, err
	}
	c, err := NewCheckout(prefix)
	if err != nil {
		return nil, err
	}
	if err := c.UseKernel(k); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func kernelNamed(name string) (Kernel, error) {
	if name == "" {
		return FindKernel()
	}
	m, err := LookupKernel(name)
	if err != nil {
		return Kernel{}, err
	}
	return m.Fetch()
}

// NewCheckout finds the checkout and makes the scratch folder, with no
// kernel chosen yet: a run over several kernels calls UseKernel for each.
func NewCheckout(prefix string) (*Checkout, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("vm: the module and the guest's binaries are built from the checkout: %w", err)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	c := &Checkout{Root: root, Dir: dir, Share: filepath.Join(dir, "share")}
	if err := os.Mkdir(c.Share, 0o777); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// UseKernel builds the module against k, in a copy of kmod/ in the scratch
// folder (one per kernel: builds for several kernels, or a `make kmod` in
// the checkout meanwhile, do not overwrite each other's objects), and
// makes k the checkout's kernel.
func (c *Checkout) UseKernel(k Kernel) error {
	src := filepath.Join(c.Root, "kmod")
	dst := filepath.Join(c.Dir, "kmod-"+k.Version)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !(n == "Makefile" || n == "Kbuild" || strings.HasSuffix(n, ".h") || strings.HasSuffix(n, ".c") && !strings.HasSuffix(n, ".mod.c")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o644); err != nil {
			return err
		}
	}
	ko, err := buildModule(dst, k)
	if err != nil {
		return err
	}
	c.Kernel, c.Module = k, ko
	return nil
}

// BuildGo builds pkg (its test binary with test) into the scratch folder
// as name and returns the path.
func (c *Checkout) BuildGo(pkg, name string, test bool) (string, error) {
	out := filepath.Join(c.Dir, name)
	return out, BuildGo(c.Root, pkg, out, test)
}

// Close removes the scratch folder.
func (c *Checkout) Close() error { return os.RemoveAll(c.Dir) }
