package bench

import (
	"context"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/nflog"
	"github.com/imp2/imp2/internal/pace"
)

// nflogGroup is the nfnetlink_log group of the bench's rule; the rule and
// the group live in the run's own namespace.
const nflogGroup = 5

// nflogFamily is NETLINK_NETFILTER, the family NFLOG messages travel on.
const nflogFamily = 12

// nflogSource is the kernel's own hook→netlink path: an nft `log group`
// rule at imp2's hook point, read through nfnetlink_log. It is the peer
// that tells what a well-trodden kernel path does under the same load.
type nflogSource struct {
	dst     netns.NS
	qthresh uint32
}

func newNFLOGSource(ctx context.Context, topo *netns.Topology, qthresh uint32) (*nflogSource, error) {
	if err := nflog.AddRule(ctx, topo.Dst, nflogGroup); err != nil {
		return nil, err
	}
	return &nflogSource{dst: topo.Dst, qthresh: qthresh}, nil
}

func (s *nflogSource) family() uint16 { return nflogFamily }
func (s *nflogSource) close() error   { return nil }

func (s *nflogSource) open(rcvbuf int, noENOBUFS bool) (consumer, error) {
	var c *nflog.Conn
	err := s.dst.Do(func() error {
		var err error
		c, err = nflog.Dial(nflog.Config{Group: nflogGroup, QThresh: s.qthresh, RcvBuf: rcvbuf,
			NoENOBUFS: noENOBUFS, Timestamps: true})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &nflogConsumer{c: c, wallOffset: time.Now().UnixNano() - pace.Monotonic()}, nil
}

type nflogConsumer struct {
	c *nflog.Conn
	// wallOffset turns NFLOG's wall-clock timestamps into CLOCK_MONOTONIC.
	wallOffset int64
}

func (n *nflogConsumer) read(deadline time.Time, fn func(*event)) error {
	n.c.SetReadDeadline(deadline)
	var e event
	_, err := n.c.Read(func(p *nflog.Packet) {
		e = event{number: p.Number, seq: p.Seq}
		if p.KernelWall > 0 {
			// The skb's receive time: the hook side of NFLOG's path.
			e.unicastNs = p.KernelWall - n.wallOffset
		}
		fn(&e)
	})
	if err == nflog.ErrOverrun {
		return imp2.ErrOverrun
	}
	return err
}

func (n *nflogConsumer) memInfo() (imp2.MemInfo, error) { return n.c.MemInfo() }

// sourceDrops: nfnetlink_log keeps no per-listener drop count.
func (n *nflogConsumer) sourceDrops(context.Context) (int64, bool, error) {
	return 0, false, nil
}

// handled: nfnetlink_log counts nothing per listener either, and its
// sequence numbers are only seen in the messages it queued: the last one
// cannot be read while the queue is full without taking events from it.
func (n *nflogConsumer) handled() (int64, bool, error) { return 0, false, nil }

func (n *nflogConsumer) kernelQueue() bool { return true }
func (n *nflogConsumer) close() error      { return n.c.Close() }
