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
