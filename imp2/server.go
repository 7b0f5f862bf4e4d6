package imp2

// DefaultMaxConsumers is the module's max_consumers default: the most
// consumers registered at once unless ServerConfig.MaxConsumers says
// otherwise.
const DefaultMaxConsumers = 64

// KeptDeparted is how many departed consumers Server.Consumers still lists
// one by one; those that left before them are summed in Server.Departed,
// so that registration churn cannot grow the Server or its report.
const KeptDeparted = 16

// ServerConfig configures a Server.
type ServerConfig struct {
	// Family is the netlink unit: 0 means UserSockFamily (2).
	Family int
	// PortID is the port to bind, the one consumers name as their peer;
	// 0 lets the kernel choose (see Server.PortID).
	PortID uint32
	// Dest, if non-zero, is a fixed destination: every frame goes to this
	// port without a registration, and it stays in the consumer set when it
	// closes or disappears. Consumers may still register beside it; it is
	// not one of them (WaitConsumers, MaxConsumers).
	Dest uint32
	// NetNS, if non-zero, is an open file descriptor of the network
	// namespace to create the socket in.
	NetNS int
	// AllowUnprivileged lets processes without CAP_NET_ADMIN register, as
	// the module's allow_unprivileged=1 does. Off, a registration is
	// refused with EPERM unless its sender has CAP_NET_ADMIN in the user
	// namespace owning the Server's network namespace (see Listen).
	AllowUnprivileged bool
	// MaxConsumers bounds the consumers registered at once, as the
	// module's max_consumers does: one more is refused with ENOSPC.
	// 0 means DefaultMaxConsumers.
	MaxConsumers int
	// OnStats, if set, may change the counters of each IMP2_STATS reply
	// before it goes to port: a test scripts what its consumer is told
	// (imp2test). It runs on the Server's control goroutine.
	OnStats func(port uint32, st *Stats)
}

// Server is a user-space stand-in for the module's side of the protocol,
// for emulation over NETLINK_USERSOCK: consumers register with it as with
// the module, and it sends them whole netlink frames with MSG_DONTWAIT,
// counting what their full queues refuse. Unlike the module's, its drops do
// not raise ENOBUFS at the consumer: a user-space sender gets EAGAIN itself
// and the receiver sees nothing.
//
// It admits consumers as the module does: CAP_NET_ADMIN unless
// AllowUnprivileged (see cred_linux.go for how user space can tell), at
// most MaxConsumers at once, and a consumer is the sender address of its
// IMP2_U_PID, never the nlmsg_pid it claims. Control datagrams are walked
// message by message as the module walks an skb, whatever their length.
// Control messages are served on a goroutine.
//
// A consumer killed without IMP2_CLOSE stays registered until a send to it
// fails (ECONNREFUSED) or the Server looks for its socket (WaitConsumers,
// Registered, a registration finding the set full): the module learns of
// it from NETLINK_URELEASE, user space only by looking.
type Server struct {
	server // the platform's state: server_linux.go
}

// SendCounts are the outcomes of the frames a Server offered to one
// consumer, by class: each frame is counted once.
type SendCounts struct {
	Sent         uint64 // queued to its socket
	EAGAIN       uint64 // its queue was full: the frame is lost for it
	ECONNREFUSED uint64 // no socket bound to its port
	ENOBUFS      uint64 // the kernel could not allocate the frame
	EPERM        uint64 // the kernel refused the send
	Other        uint64 // any other error
}

// Offered is the number of frames offered, delivered or not.
func (c SendCounts) Offered() uint64 { return c.Sent + c.Failed() }

// Failed is the number of frames not delivered.
func (c SendCounts) Failed() uint64 {
	return c.EAGAIN + c.ECONNREFUSED + c.ENOBUFS + c.EPERM + c.Other
}

// Add adds o to c.
func (c *SendCounts) Add(o SendCounts) {
	c.Sent += o.Sent
	c.EAGAIN += o.EAGAIN
	c.ECONNREFUSED += o.ECONNREFUSED
	c.ENOBUFS += o.ENOBUFS
	c.EPERM += o.EPERM
	c.Other += o.Other
}

// ConsumerStats describes one consumer a Server has known.
type ConsumerStats struct {
	PortID uint32
	// PID and UID are the credentials (SCM_CREDENTIALS) of the
	// registration; 0 and 0 for the fixed Dest.
	PID, UID uint32
	Active   bool // still in the consumer set
	Fixed    bool // ServerConfig.Dest
	SendCounts
	LastSeq uint32 // nlmsg_seq of the last frame offered to it
}

// DepartedStats sums the consumers that left the set longer ago than the
// KeptDeparted that Server.Consumers still lists.
type DepartedStats struct {
	Consumers uint64
	SendCounts
}

// RefusedStats counts the registrations a Server turned down.
type RefusedStats struct {
	EPERM  uint64 // sender without CAP_NET_ADMIN (AllowUnprivileged off)
	ENOSPC uint64 // MaxConsumers were registered already
}
