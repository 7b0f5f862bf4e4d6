// Package vm boots a Debian kernel under qemu (software emulation): the one
// installed on this machine, or any kernel of the matrix (matrix.go), with an initramfs holding busybox, the imp2 module,
// the kernel modules a test needs and static binaries, and returns what the
// guest printed, its exit status and the files it left in a shared folder.
//
// It is the one way tests and imp2-bench run the real module: the host
// kernel of the machines we develop on cannot load modules.
package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Kernel is a Debian kernel with its matching headers and modules: the
// image we boot and the tree we build imp2.ko against. An installed one
// lies in the system's folders; a matrix kernel fetched into the cache
// lies under Root, in the same layout.
type Kernel struct {
	Name    string // matrix name (IMP2_KERNEL), "" for one picked by version
	Version string // e.g. 6.1.0-56-amd64
	Image   string // /boot/vmlinuz-<version>
	Headers string // /usr/src/linux-headers-<version>
	Modules string // /lib/modules/<version>
	Root    string // the unpacked packages' root; "" for an installed kernel
	// BuildRoot is the root folder the module is built in, chrooted,
	// when the headers need another suite's compiler; "" builds on the
	// host.
	BuildRoot string
	// SingleThreadTCG runs both vCPUs on one qemu thread (MatrixKernel
	// says why).
	SingleThreadTCG bool
}

// accel is qemu's -accel for k.
func (k Kernel) accel() string {
	if k.SingleThreadTCG {
		return "tcg,thread=single"
	}
	return "tcg"
}

// Label names the kernel in messages: its matrix name and release.
func (k Kernel) Label() string {
	if k.Name == "" {
		return k.Version
	}
	return k.Name + " (" + k.Version + ")"
}

// MissingError says which Debian package provides what was not found, so a
// test that cannot boot the VM fails with an actionable message.
type MissingError struct {
	What    string
	Package string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("vm: %s not found: install the Debian package %s (make deps)", e.What, e.Package)
}

// FindKernel returns the kernel to boot: the matrix kernel IMP2_KERNEL
// names (fetched into the cache when not installed), else the installed
// kernel IMP2_KERNEL_VERSION names, else the newest installed kernel that
// has an image, headers and modules.
func FindKernel() (Kernel, error) {
	if name := os.Getenv("IMP2_KERNEL"); name != "" {
		m, err := LookupKernel(name)
		if err != nil {
			return Kernel{}, fmt.Errorf("IMP2_KERNEL=%s: %w", name, err)
		}
		return m.Fetch()
	}
	versions := []string{}
	if v := os.Getenv("IMP2_KERNEL_VERSION"); v != "" {
		versions = append(versions, v)
	} else {
		images, _ := filepath.Glob("/boot/vmlinuz-*")
		for _, img := range images {
			versions = append(versions, strings.TrimPrefix(filepath.Base(img), "vmlinuz-"))
		}
		sort.Sort(sort.Reverse(sort.StringSlice(versions)))
	}
	if len(versions) == 0 {
		return Kernel{}, &MissingError{What: "kernel image /boot/vmlinuz-*", Package: "linux-image-amd64"}
	}
	var firstErr error
	for _, v := range versions {
		k := Kernel{
			Version: v,
			Image:   "/boot/vmlinuz-" + v,
			Headers: "/usr/src/linux-headers-" + v,
			Modules: "/lib/modules/" + v,
		}
		err := k.check()
		if err == nil {
			return k, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return Kernel{}, firstErr
}

func (k Kernel) check() error {
	for _, c := range []struct{ path, what, pkg string }{
		{k.Image, "kernel image " + k.Image, "linux-image-amd64"},
		{k.Modules + "/modules.dep", "kernel modules of " + k.Version, "linux-image-amd64"},
		{k.Headers + "/Makefile", "kernel headers " + k.Headers, "linux-headers-amd64 (same version as the image)"},
	} {
		if _, err := os.Stat(c.path); err != nil {
			return &MissingError{What: c.what, Package: c.pkg}
		}
	}
	return nil
}

// hostTools are the host programs a boot needs, with their packages.
var hostTools = []struct{ path, pkg string }{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"/bin/busybox", "busybox-static"},
}

// CheckHost reports the first missing host program as a *MissingError.
func CheckHost() error {
	for _, t := range hostTools {
		if _, err := exec.LookPath(t.path); err != nil {
			return &MissingError{What: t.path, Package: t.pkg}
		}
	}
	if out, err := exec.Command("/bin/busybox", "--list").Output(); err != nil || !strings.Contains(string(out), "\ninsmod\n") {
		return &MissingError{What: "a static busybox with insmod", Package: "busybox-static"}
	}
	return nil
}
