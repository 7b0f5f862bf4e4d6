//go:build !linux

package results

import (
	"os"
	"runtime"
)

// HostEnvironment describes the machine this process runs on. Off Linux
// there is no kernel release to report; Machine is Go's GOOS/GOARCH.
func HostEnvironment(inVM bool) Environment {
	env := Environment{Machine: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), InVM: inVM}
	env.Hostname, _ = os.Hostname()
	return env
}
