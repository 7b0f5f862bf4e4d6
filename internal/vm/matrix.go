package vm

import (
	"fmt"
	"os"
	"strings"
)

// MatrixKernel is one kernel of the test matrix: Debian packages pinned to
// one version, fetched into the cache (see Fetch) rather than installed.
// Pinning the exact package names and version makes a run reproducible:
// the same image, modules and headers on every machine, until the archive
// drops that version (then bump the pin here).
type MatrixKernel struct {
	Name    string // what IMP2_KERNEL and IMP2_KERNELS name
	Release string // uname -r of the kernel, the packages' ABI name
	Version string // Debian version shared by every package below
	Suite   string // the archive suite that has them (a line of the cache's sources list)
	// Packages hold the image, its modules, the headers, the headers'
	// -common part and the kbuild tools the headers' scripts link to.
	Packages []string
	// BuildRoot names the Debian suite whose compiler the headers need
	// when the host's gcc-12 cannot build against them (7.x headers pass
	// -fmin-function-alignment, new in gcc 14); "" builds on the host.
	BuildRoot string
	// SingleThreadTCG: boot under single-threaded TCG. Under qemu 7.2's
	// multi-threaded TCG these kernels take "Oops: int3" panics where
	// they patch their own code (static keys flipped by text_poke_bp:
	// ip_rcv while a netfilter hook is unregistered under traffic,
	// sched_clock_cpu at boot), in 3 of 3 runs of 150 imp2 reloads under
	// ping on 7.3 and 1 of 2 on 6.12; 6.1 took none (2 of 2 clean), and
	// single-threaded TCG none on 7.3 (2 of 2). The guest keeps its two
	// CPUs, interleaved on one host thread: its timings are not
	// comparable with a multi-threaded 6.1 run.
	SingleThreadTCG bool
}

// Matrix is the kernel matrix, pinned in this one table. The first entry
// is Debian 12's own kernel, the one FindKernel boots by default.
var Matrix = []MatrixKernel{
	{
		Name: "6.1", Release: "6.1.0-57-amd64", Version: "6.1.192-3", Suite: "bookworm-security",
		Packages: []string{"linux-image-6.1.0-57-amd64", "linux-headers-6.1.0-57-amd64",
			"linux-headers-6.1.0-57-common", "linux-kbuild-6.1"},
	},
	{
		Name: "6.12", Release: "6.12.95+deb12-amd64", Version: "6.12.95-1~bpo12+1", Suite: "bookworm-backports",
		Packages: []string{"linux-image-6.12.95+deb12-amd64", "linux-headers-6.12.95+deb12-amd64",
			"linux-headers-6.12.95+deb12-common", "linux-kbuild-6.12.95+deb12"},
		SingleThreadTCG: true,
	},
	{
		// From 6.18 on Debian splits the image: linux-binary holds
		// vmlinuz, linux-modules the modules, linux-base the config.
		Name: "7.3", Release: "7.3.4+deb13-amd64", Version: "7.3.4-1~bpo13+1", Suite: "trixie-backports",
		Packages: []string{"linux-binary-7.3.4+deb13-amd64", "linux-modules-7.3.4+deb13-amd64",
			"linux-base-7.3.4+deb13-amd64", "linux-headers-7.3.4+deb13-amd64",
			"linux-headers-7.3.4+deb13-common", "linux-kbuild-7.3.4+deb13"},
		BuildRoot: "trixie", SingleThreadTCG: true,
	},
	{
		Name: "7.3-rt", Release: "7.3.4+deb13-rt-amd64", Version: "7.3.4-1~bpo13+1", Suite: "trixie-backports",
		Packages: []string{"linux-binary-7.3.4+deb13-rt-amd64", "linux-modules-7.3.4+deb13-rt-amd64",
			"linux-base-7.3.4+deb13-rt-amd64", "linux-headers-7.3.4+deb13-rt-amd64",
			"linux-headers-7.3.4+deb13-common", "linux-kbuild-7.3.4+deb13"},
		BuildRoot: "trixie", SingleThreadTCG: true,
	},
}

// suiteURIs says which archive serves each suite the matrix names.
var suiteURIs = map[string]string{
	"bookworm-security":  "http://deb.debian.org/debian-security",
	"bookworm-backports": "http://deb.debian.org/debian",
	"trixie-backports":   "http://deb.debian.org/debian",
}

// LookupKernel returns the matrix entry called name.
func LookupKernel(name string) (MatrixKernel, error) {
	for _, m := range Matrix {
		if m.Name == name {
			return m, nil
		}
	}
	return MatrixKernel{}, fmt.Errorf("vm: no kernel %q in the matrix (internal/vm/matrix.go has %s)", name, strings.Join(MatrixNames(), ", "))
}

// MatrixNames lists the matrix's names in order.
func MatrixNames() []string {
	names := make([]string, len(Matrix))
	for i, m := range Matrix {
		names[i] = m.Name
	}
	return names
}

// SelectedKernels returns the matrix names IMP2_KERNELS asks for: "all",
// or a comma-separated list. Unset, it returns nil: the caller runs on the
// one kernel FindKernel picks.
func SelectedKernels() ([]string, error) {
	v := strings.TrimSpace(os.Getenv("IMP2_KERNELS"))
	if v == "" {
		return nil, nil
	}
	if v == "all" {
		return MatrixNames(), nil
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, err := LookupKernel(n); err != nil {
			return nil, fmt.Errorf("IMP2_KERNELS=%s: %w", v, err)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("IMP2_KERNELS=%q names no kernel (all, or a list of %s)", v, strings.Join(MatrixNames(), ", "))
	}
	return names, nil
}
