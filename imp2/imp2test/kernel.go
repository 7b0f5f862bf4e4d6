// Package imp2test is a fake imp2 kernel side for tests of consumers, in
// the spirit of mdlayher/netlink's nltest, but over a real netlink socket
// (NETLINK_USERSOCK) rather than a function: the consumer under test is
// the real one, with its real socket, buffers and drops, only dialled to
// the Kernel's port instead of the module (imp2.Config Family and Peer;
// see Kernel.ConsumerConfig).
//
// A Kernel is an imp2.Server, so it admits and answers consumers as the
// module does: IMP2_U_PID from a sender without CAP_NET_ADMIN is refused
// with EPERM unless AllowUnprivileged, one more than MaxConsumers with
// ENOSPC, IMP2_CLOSE of a port not registered with ENOENT; IMP2_GET_STATS
// is answered with IMP2_STATS, whose counters a test may script
// (Kernel.ScriptStats). SendEvents numbers each consumer's events itself,
// from 1 at its registration, as the module does, so a consumer's losses
// are the gaps in its numbering; Replay sends a recorded trace's events as
// they were recorded, gaps included, as imp2-replay does. Events and
// WriteTrace build synthetic traces (package pcapnl).
//
// Netlink exists only on Linux; elsewhere New fails.
package imp2test

import (
	"errors"
	"io"
	"sync"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// Config configures a Kernel: the module's parameters.
type Config struct {
	// AllowUnprivileged admits consumers without CAP_NET_ADMIN, as the
	// module's allow_unprivileged=1 (tests that run as a user need it).
	AllowUnprivileged bool
	// MaxConsumers is the module's max_consumers; 0 means
	// imp2.DefaultMaxConsumers.
	MaxConsumers int
	// NetNS, if non-zero, is an open file descriptor of the network
	// namespace to serve in.
	NetNS int
}

// Kernel is a fake imp2 module. Its imp2.Server methods send frames
// (SendBatch unchanged, SendNumbered with the module's numbering) and
// report what each consumer got (Consumers, Refused, Stats).
type Kernel struct {
	*imp2.Server

	mu     sync.Mutex
	script func(port uint32, st imp2.Stats) imp2.Stats
}

// New starts a Kernel on a port of its own; Close stops it.
func New(cfg Config) (*Kernel, error) {
	k := &Kernel{}
	s, err := imp2.Listen(imp2.ServerConfig{
		AllowUnprivileged: cfg.AllowUnprivileged, MaxConsumers: cfg.MaxConsumers, NetNS: cfg.NetNS,
		OnStats: k.onStats,
	})
	if err != nil {
		return nil, err
	}
	k.Server = s
	return k, nil
}

// ConsumerConfig is the imp2.Config that dials this Kernel in place of
// the module: the consumer under test takes it (or its Family and Peer).
// It asks for the registration's acknowledgement, as the module gives it,
// so that a refusal is Dial's error.
func (k *Kernel) ConsumerConfig() imp2.Config {
	return imp2.Config{Family: imp2.UserSockFamily, Peer: k.PortID(), Ack: true}
}

// ScriptStats makes f decide the counters of the IMP2_STATS replies from
// now on: it gets the consumer's port and what the Kernel counted, and
// returns what the consumer is told (a test of a consumer's loss
// accounting scripts self_dropped, say). nil restores the counts.
func (k *Kernel) ScriptStats(f func(port uint32, st imp2.Stats) imp2.Stats) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.script = f
}

func (k *Kernel) onStats(port uint32, st *imp2.Stats) {
	k.mu.Lock()
	f := k.script
	k.mu.Unlock()
	if f != nil {
		*st = f(port, *st)
	}
}

// SendEvents sends one frame per event to every consumer, numbered for
// each as the module numbers them (imp2.Server.SendNumbered), and returns
// the frames queued, summed over consumers.
func (k *Kernel) SendEvents(evs ...imp2.Event) (int, error) {
	frames := make([][]byte, len(evs))
	for i, ev := range evs {
		frames[i] = imp2.AppendEventMessage(nil, 0, ev)
	}
	return k.SendNumbered(frames)
}

// Replay sends the events of a trace (what imp2-record wrote, or
// WriteTrace) to every consumer, byte for byte and at top speed, as the
// module sends under load: a consumer that does not keep up loses frames
// (Consumers counts them, and they show as gaps). Only the frames to user
// space that hold IMP2_K_MSG events go out; the recorder's conversation
// with its peer is the Kernel's own business. It returns the event frames
// it offered.
func (k *Kernel) Replay(trace io.Reader) (int, error) {
	rd, err := pcapnl.NewReader(trace)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	var batch [][]byte
	offered := 0
	flush := func() error {
		_, err := k.SendBatch(batch)
		offered += len(batch)
		batch = batch[:0]
		return err
	}
	for {
		f, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return offered, flush()
		}
		if err != nil {
			return offered, errors.Join(err, flush())
		}
		if h, err := f.Header(); err != nil || f.Direction != pcapnl.ToUser || h.Type != imp2.TypeEvent {
			continue
		}
		batch = append(batch, append([]byte(nil), f.Data...))
		if len(batch) == 64 {
			if err := flush(); err != nil {
				return offered, err
			}
		}
	}
}
