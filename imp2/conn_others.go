//go:build !linux

package imp2

import (
	"context"
	"errors"
	"runtime"
	"time"
)

// errUnsupported is what Dial, Listen and their methods return here.
var errUnsupported = errors.New("imp2: unsupported on " + runtime.GOOS + ": netlink exists only on Linux")

// conn is Conn where there is no netlink: Dial always fails.
type conn struct{}

// Dial fails: netlink exists only on Linux.
func Dial(Config) (*Conn, error) { return nil, errUnsupported }

func (*Conn) PortID() uint32                       { return 0 }
func (*Conn) ReadBatch([]Message) (int, error)     { return 0, errUnsupported }
func (*Conn) Receive() ([]byte, error)             { return nil, errUnsupported }
func (*Conn) Stats(context.Context) (Stats, error) { return Stats{}, errUnsupported }
func (*Conn) MemInfo() (MemInfo, error)            { return MemInfo{}, errUnsupported }
func (*Conn) RcvBuf() (int, error)                 { return 0, errUnsupported }
func (*Conn) SetReadDeadline(time.Time) error      { return errUnsupported }
func (*Conn) Close() error                         { return errUnsupported }
