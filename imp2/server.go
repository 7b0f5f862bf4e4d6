package imp2

// ServerConfig configures a Server.
type ServerConfig struct {
	// Family is the netlink unit: 0 means UserSockFamily (2).
	Family int
	// PortID is the port to bind, the one consumers name as their peer;
	// 0 lets the kernel choose (see Server.PortID).
	PortID uint32
	// Dest, if non-zero, is a fixed destination: every frame goes to this
	// port without a registration, and it stays in the consumer set when it
	// closes or disappears. Consumers may still register beside it.
	Dest uint32
	// NetNS, if non-zero, is an open file descriptor of the network
	// namespace to create the socket in.
	NetNS int
}

// ConsumerStats describes one consumer a Server has known.
type ConsumerStats struct {
	PortID  uint32
	Active  bool   // still in the consumer set
	Fixed   bool   // ServerConfig.Dest
	Sent    uint64 // frames queued to it
	EAGAIN  uint64 // frames dropped because its queue was full
	LastSeq uint32 // nlmsg_seq of the last frame offered to it
}
