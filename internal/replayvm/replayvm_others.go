//go:build !linux

package replayvm

import (
	"runtime"

	"github.com/imp2/imp2/replay"
)

// Run is unsupported off Linux.
func Run(c Config) int {
	c.Log("-vm: unsupported on %s", runtime.GOOS)
	return replay.ExitError
}
