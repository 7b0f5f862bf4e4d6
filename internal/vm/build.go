package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
func BuildModule(root string, k Kernel) (string, error) {
	if _, err := exec.LookPath("make"); err != nil {
		return "", &MissingError{What: "make", Package: "make"}
	}
	cmd := exec.Command("make", "-s", "-C", filepath.Join(root, "kmod"), "KDIR="+k.Headers)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("vm: building imp2.ko against %s: %w\n%s", k.Headers, err, out)
	}
	return filepath.Join(root, "kmod", "imp2.ko"), nil
}

// BuildGo builds a static Go binary (CGO_ENABLED=0) for the guest. With
// test set it builds the package's test binary instead.
func BuildGo(root, pkg, out string, test bool) error {
	args := []string{"build", "-trimpath", "-o", out, pkg}
	if test {
		args = []string{"test", "-c", "-trimpath", "-o", out, pkg}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm: go %v: %w\n%s", args, err, b)
	}
	return nil
}

// Checkout is what a VM run builds from the checkout: the host's kernel,
// the module built against its headers, and a scratch folder for the
// guest's binaries with an empty share folder in it (Config.ShareDir).
type Checkout struct {
	Root   string
	Kernel Kernel
	Module string // kmod/imp2.ko
	Dir    string // scratch; Close removes it
	Share  string // Dir/share
}

// PrepareCheckout finds the checkout and the kernel, builds the module and
// makes the scratch folder, named after prefix.
func PrepareCheckout(prefix string) (*Checkout, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("vm: the module and the guest's binaries are built from the checkout: %w", err)
	}
	k, err := FindKernel()
	if err != nil {
		return nil, err
	}
	ko, err := BuildModule(root, k)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	c := &Checkout{Root: root, Kernel: k, Module: ko, Dir: dir, Share: filepath.Join(dir, "share")}
	if err := os.Mkdir(c.Share, 0o777); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// BuildGo builds pkg (its test binary with test) into the scratch folder
// as name and returns the path.
func (c *Checkout) BuildGo(pkg, name string, test bool) (string, error) {
	out := filepath.Join(c.Dir, name)
	return out, BuildGo(c.Root, pkg, out, test)
}

// Close removes the scratch folder.
func (c *Checkout) Close() error { return os.RemoveAll(c.Dir) }
