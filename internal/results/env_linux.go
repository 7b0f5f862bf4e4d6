package results

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// HostEnvironment describes the machine this process runs on.
func HostEnvironment(inVM bool) Environment {
	env := Environment{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), InVM: inVM}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		env.KernelRelease = unix.ByteSliceToString(u.Release[:])
		env.Machine = unix.ByteSliceToString(u.Machine[:])
	}
	env.Hostname, _ = os.Hostname()
	return env
}
