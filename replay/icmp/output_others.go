//go:build !linux

package icmp

import (
	"fmt"
	"runtime"

	"github.com/imp2/imp2/replay"
)

func newOutput(Options) (replay.Output, error) {
	return nil, fmt.Errorf("icmp: unsupported on %s (it needs network namespaces, veth and packet sockets)", runtime.GOOS)
}
