//go:build !linux

package imp2

import "context"

// server is Server where there is no netlink: Listen always fails.
type server struct{}

// Listen fails: netlink exists only on Linux.
func Listen(ServerConfig) (*Server, error) { return nil, errUnsupported }

func (*Server) PortID() uint32                           { return 0 }
func (*Server) Send([]byte) (int, error)                 { return 0, errUnsupported }
func (*Server) SendBatch([][]byte) (int, error)          { return 0, errUnsupported }
func (*Server) SendNumbered([][]byte) (int, error)       { return 0, errUnsupported }
func (*Server) WaitConsumers(context.Context, int) error { return errUnsupported }
func (*Server) Registered() int                          { return 0 }
func (*Server) Consumers() []ConsumerStats               { return nil }
func (*Server) Departed() DepartedStats                  { return DepartedStats{} }
func (*Server) Refused() RefusedStats                    { return RefusedStats{} }
func (*Server) Stats() Stats                             { return Stats{} }
func (*Server) Close() error                             { return errUnsupported }
