//go:build !linux

package replayvm

import "github.com/imp2/imp2/replay"

// Run is unsupported off Linux.
func Run(c Config) int {
	c.Log("-vm: unsupported on this GOOS")
	return replay.ExitError
}
