// Package icmp replays imp2 traces through the real module: for each
// recorded event (IMP2_K_MSG) it builds the IPv4 ICMP packet that caused
// it, to the byte (recorded source and destination, type, code, id,
// sequence and total length), and sends it from a network namespace of
// its own across a veth into the namespace where the module's hook and the
// consumers are: a fresh one, or an existing one guarded by an nftables
// table that drops the packets right after the hook. With Verify, a
// consumer of its own records what the module emits and compares it with
// what was replayed, counting its own losses by nlmsg_seq
// (imp2.SeqTracker).
//
// New returns a replay.Output; it needs Linux, root (CAP_NET_ADMIN and
// CAP_SYS_ADMIN), iproute2, and nft for an existing namespace.
package icmp

import (
	"errors"
	"fmt"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/replay"
)

// Options configure New.
type Options struct {
	// DestNetNS is the namespace to send into: a name in /run/netns, or a
	// namespace file such as /proc/1/ns/net; "" makes a fresh one.
	DestNetNS string
	// Family, if not 0, replays only the events of that netlink family.
	Family int
	// MinConsumers consumers (besides the verifier) registered with the
	// module in the destination are waited for, up to Wait (0: forever).
	MinConsumers int
	Wait         time.Duration
	// Verify records the module's events as a second consumer, with a
	// receive buffer of VerifyRcvBuf bytes (forced past rmem_max as
	// root), and compares them with the replayed ones once nothing came
	// for VerifyWait; more than VerifyTolerate missing + extra events
	// fail the replay (replay.ExitVerify).
	Verify         bool
	VerifyRcvBuf   int64 // at most imp2.MaxRcvBuf
	VerifyWait     time.Duration
	VerifyTolerate int64
	// TopSpeed and Batch are the replay's Timing.TopSpeed and Batch: at
	// top speed there is no schedule to time the events against.
	TopSpeed bool
	Batch    int
	Log      func(format string, args ...any) // progress notes; nil: none
}

// New returns the ICMP regeneration output.
func New(o Options) (replay.Output, error) { return newOutput(o) }

// Validate reports the first option out of range.
func (o *Options) Validate() error {
	switch {
	case o.VerifyRcvBuf < 0:
		return errors.New("icmp: VerifyRcvBuf cannot be negative")
	case o.VerifyRcvBuf > imp2.MaxRcvBuf:
		return fmt.Errorf("icmp: VerifyRcvBuf %d: want at most %d bytes (1G less one): the kernel doubles it into an int", o.VerifyRcvBuf, imp2.MaxRcvBuf)
	case o.Verify && o.VerifyWait <= 0:
		return errors.New("icmp: VerifyWait must be positive")
	case o.VerifyTolerate < 0:
		return errors.New("icmp: VerifyTolerate cannot be negative")
	case o.MinConsumers < 0:
		return errors.New("icmp: MinConsumers cannot be negative")
	}
	return nil
}

// report is the output's part of the summary: {"icmp": …}.
type report struct {
	ICMP *Summary `json:"icmp"`
}

func (r report) Undelivered() (eagain, other uint64) { return 0, r.ICMP.SendErrors }

func (r report) Delivered() uint64 { return r.ICMP.Packets }

// Headline says what is known: the packets sent, and what became of
// them only where -verify read the module's events (sent packets are no
// delivery: without the module, nothing is made of them).
func (r report) Headline(sent int64) string {
	if v := r.ICMP.Verify; v != nil {
		return fmt.Sprintf("the module emitted %d of %d events, sent %d packets for %d frames", v.Matched, v.Expected, r.ICMP.Packets, sent)
	}
	return fmt.Sprintf("sent %d packets for %d frames (-verify checks what the module made of them)", r.ICMP.Packets, sent)
}

func (r report) Problem(int64) (string, int) {
	if v := r.ICMP.Verify; v != nil && !v.OK {
		return fmt.Sprintf("verify: %d missing and %d extra event(s), more than the %d tolerated", v.Missing, v.Extra, v.Tolerance), replay.ExitVerify
	}
	return "", replay.ExitOK
}

func (r report) AppendText(b []byte) []byte { return append(b, r.ICMP.text()...) }
