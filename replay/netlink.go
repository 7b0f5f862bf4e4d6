package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// ErrNoConsumer is returned by an output's Start when the wait passes
// without enough registered consumers (exit code ExitNoConsumer).
var ErrNoConsumer = errors.New("no consumer registered")

// NetlinkOptions configure NewNetlink.
type NetlinkOptions struct {
	Family int    // netlink family (unit) to serve on
	Bind   uint32 // port id consumers register with; 0: the kernel picks
	Dest   uint32 // also send to this fixed port id, without a registration
	NetNS  string // network namespace file to serve in; "": this one
	// Wait bounds the wait for MinConsumers registered consumers (0:
	// forever); consumers whose socket closed do not count.
	Wait         time.Duration
	MinConsumers int
	// MaxConsumers and AllowUnprivileged admit consumers as the module
	// does (max_consumers, allow_unprivileged).
	MaxConsumers      int
	AllowUnprivileged bool
	// Linger: after the last frame, keep answering control messages
	// until every consumer has unregistered or this passes.
	Linger time.Duration
	Log    func(format string, args ...any) // progress notes; nil: none
}

// NewNetlink returns the kernel side of imp2 on a real netlink socket,
// built on imp2.Server: consumers register with IMP2_U_PID and leave with
// IMP2_CLOSE or when their socket goes away; every kernel→user frame is
// sent, byte for byte, to each of them with MSG_DONTWAIT. A full queue
// loses the frame for that consumer and counts EAGAIN (never retried).
func NewNetlink(o NetlinkOptions) (Output, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	return &netlinkOut{NetlinkOptions: o}, nil
}

// Validate reports the first option out of range.
func (o *NetlinkOptions) Validate() error {
	switch {
	case o.MinConsumers < 0:
		return errors.New("netlink: MinConsumers cannot be negative")
	case o.MaxConsumers < 1:
		return errors.New("netlink: MaxConsumers must be at least 1")
	case o.MinConsumers > o.MaxConsumers:
		return fmt.Errorf("netlink: MinConsumers %d can never register with MaxConsumers %d", o.MinConsumers, o.MaxConsumers)
	case o.Linger < 0:
		return errors.New("netlink: Linger cannot be negative")
	}
	return nil
}

type netlinkOut struct {
	NetlinkOptions
	ctx context.Context

	srv      *imp2.Server
	bufs     [][]byte
	mu       sync.Mutex           // held by Send: Snapshot sees whole batches only
	offered  int64                // frames sent, under mu
	final    []imp2.ConsumerStats // at close
	departed imp2.DepartedStats   // at close
	refused  imp2.RefusedStats    // at close
}

func (o *netlinkOut) Start(ctx context.Context) error {
	o.ctx = ctx
	cfg := imp2.ServerConfig{Family: o.Family, PortID: o.Bind, Dest: o.Dest,
		MaxConsumers: o.MaxConsumers, AllowUnprivileged: o.AllowUnprivileged}
	if o.NetNS != "" {
		f, err := os.Open(o.NetNS)
		if err != nil {
			return fmt.Errorf("netlink: namespace: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	srv, err := imp2.Listen(cfg)
	if err != nil {
		return fmt.Errorf("netlink family %d port %d: %w", o.Family, o.Bind, err)
	}
	o.srv = srv
	if o.Dest != 0 {
		o.Log("netlink family %d port %d: sending to fixed port %d", o.Family, srv.PortID(), o.Dest)
	}
	if o.MinConsumers == 0 {
		return nil
	}
	o.Log("netlink family %d port %d: waiting for %d consumer(s) to register (IMP2_U_PID to port %d)%s",
		o.Family, srv.PortID(), o.MinConsumers, srv.PortID(), WaitNote(o.Wait))
	wctx := ctx
	if o.Wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, o.Wait)
		defer cancel()
	}
	if err := srv.WaitConsumers(wctx, o.MinConsumers); err != nil {
		o.Linger = 0
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %d of %d consumer(s) registered with netlink family %d port %d within the wait of %v%s",
			ErrNoConsumer, srv.Registered(), o.MinConsumers, o.Family, srv.PortID(), o.Wait, o.notCounted())
	}
	return nil
}

// notCounted says which registrations did not count: consumers that left
// (IMP2_CLOSE, or their socket closed) and refused ones.
func (o *netlinkOut) notCounted() string {
	var parts []string
	left := o.srv.Departed().Consumers
	for _, c := range o.srv.Consumers() {
		if !c.Active {
			left++
		}
	}
	if left > 0 {
		parts = append(parts, fmt.Sprintf("%d registered and left", left))
	}
	r := o.srv.Refused()
	if r.EPERM > 0 {
		parts = append(parts, fmt.Sprintf("%d refused without CAP_NET_ADMIN (allowing unprivileged consumers admits them)", r.EPERM))
	}
	if r.ENOSPC > 0 {
		parts = append(parts, fmt.Sprintf("%d refused over the limit of %d consumers", r.ENOSPC, o.MaxConsumers))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// WaitNote says how long a wait lasts, for a log line.
func WaitNote(d time.Duration) string {
	if d <= 0 {
		return ", no time limit"
	}
	return fmt.Sprintf(", up to %v", d)
}

func (o *netlinkOut) Send(frames []pcapnl.Frame, _ []int64) error {
	if cap(o.bufs) < len(frames) {
		o.bufs = make([][]byte, len(frames))
	}
	b := o.bufs[:len(frames)]
	for i := range frames {
		b[i] = frames[i].Data
	}
	// Every frame a consumer does not take is counted by the Server, by
	// error class, and reported in the summary; like the module, the
	// replay goes on.
	o.mu.Lock()
	_, _ = o.srv.SendBatch(b)
	o.offered += int64(len(b))
	o.mu.Unlock()
	clear(b)
	return nil
}

// Snapshot returns the frames offered and every consumer's counters at
// one instant, between two sends: a progress line whose frames sent and
// per-consumer counts agree.
func (o *netlinkOut) Snapshot() (int64, []imp2.ConsumerStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.offered, o.Consumers()
}

func (o *netlinkOut) Begin(Clock)        {}
func (o *netlinkOut) FollowsClock() bool { return true }
func (o *netlinkOut) KernelOnly() bool   { return true }
func (o *netlinkOut) Name() string       { return "netlink" }

func (o *netlinkOut) Consumers() []imp2.ConsumerStats {
	if o.srv == nil || o.final != nil {
		return o.final
	}
	return o.srv.Consumers()
}

// close first lingers: it keeps serving control messages until every
// registered consumer has unregistered or Linger has passed, so that a
// consumer such as imp2-record can still ask for the counters
// (IMP2_GET_STATS) and close cleanly after the last frame.
func (o *netlinkOut) Close() error {
	if o.srv == nil {
		return nil
	}
	for end := time.Now().Add(o.Linger); time.Now().Before(end) && o.ctx.Err() == nil && o.srv.Registered() > 0; {
		time.Sleep(10 * time.Millisecond)
	}
	o.final, o.departed, o.refused = o.srv.Consumers(), o.srv.Departed(), o.srv.Refused()
	if o.final == nil {
		o.final = []imp2.ConsumerStats{}
	}
	return o.srv.Close()
}

// NetlinkReport is the netlink output's part of the summary.
type NetlinkReport struct {
	// Consumers lists the fixed destination, the consumers registered at
	// the end and the last imp2.KeptDeparted to leave; Departed sums those
	// that left before them; Totals sums all of them.
	Consumers []ConsumerSummary `json:"consumers"`
	Departed  *DepartedSummary  `json:"departed,omitempty"`
	Refused   *RefusedSummary   `json:"refused,omitempty"`
	Totals    *SendCounts       `json:"totals,omitempty"`

	o *netlinkOut
}

// ConsumerSummary is one consumer's line of the summary.
type ConsumerSummary struct {
	Port   uint32 `json:"port"`
	PID    uint32 `json:"pid,omitempty"` // of its registration
	UID    uint32 `json:"uid"`
	Fixed  bool   `json:"fixed,omitempty"`
	Active bool   `json:"active"`
	SendCounts
}

// SendCounts is imp2.SendCounts with the summary's names: what became of
// each frame offered to a consumer.
type SendCounts struct {
	Sent         uint64 `json:"sent"`
	EAGAIN       uint64 `json:"eagain"`
	ECONNREFUSED uint64 `json:"econnrefused"`
	ENOBUFS      uint64 `json:"enobufs"`
	EPERM        uint64 `json:"eperm"`
	Other        uint64 `json:"other_errors"`
}

// DepartedSummary sums the consumers that left before the ones listed.
type DepartedSummary struct {
	Consumers uint64 `json:"consumers"`
	SendCounts
}

// RefusedSummary counts the registrations refused.
type RefusedSummary struct {
	EPERM  uint64 `json:"eperm"`  // without CAP_NET_ADMIN
	ENOSPC uint64 `json:"enospc"` // over MaxConsumers
}

func consumerSummaries(cs []imp2.ConsumerStats) ([]ConsumerSummary, uint64) {
	var out []ConsumerSummary
	var eagain uint64
	for _, c := range cs {
		out = append(out, ConsumerSummary{Port: c.PortID, PID: c.PID, UID: c.UID, Fixed: c.Fixed, Active: c.Active,
			SendCounts: SendCounts(c.SendCounts)})
		eagain += c.EAGAIN
	}
	return out, eagain
}

func (o *netlinkOut) Report() Report {
	r := &NetlinkReport{o: o}
	r.Consumers, _ = consumerSummaries(o.Consumers())
	if r.Consumers == nil {
		r.Consumers = []ConsumerSummary{}
	}
	if o.departed.Consumers > 0 {
		r.Departed = &DepartedSummary{o.departed.Consumers, SendCounts(o.departed.SendCounts)}
	}
	if o.refused != (imp2.RefusedStats{}) {
		r.Refused = &RefusedSummary{o.refused.EPERM, o.refused.ENOSPC}
	}
	t := SendCounts(o.total())
	r.Totals = &t
	return r
}

func (o *netlinkOut) total() imp2.SendCounts {
	total := o.departed.SendCounts
	for _, c := range o.final {
		total.Add(c.SendCounts)
	}
	return total
}

// Headline says what the consumers got of the frames offered. One
// consumer (or none): "delivered N, offered M frames". Several each get
// every frame, so deliveries outnumber frames and are said to be so.
func (r *NetlinkReport) Headline(offered int64) string {
	n := len(r.Consumers)
	if r.Departed != nil {
		n += int(r.Departed.Consumers)
	}
	if n < 2 {
		return fmt.Sprintf("delivered %d, offered %d frames", r.Delivered(), offered)
	}
	return fmt.Sprintf("offered %d frames to %d consumers: %d of %d deliveries", offered, n, r.Delivered(), imp2.SendCounts(*r.Totals).Offered())
}

// Undelivered returns the frames refused with EAGAIN and with any other
// error, over every consumer.
func (r *NetlinkReport) Undelivered() (eagain, other uint64) {
	t := imp2.SendCounts(*r.Totals)
	return t.EAGAIN, t.Failed() - t.EAGAIN
}

// Delivered returns the datagrams the consumers' sockets took.
func (r *NetlinkReport) Delivered() uint64 {
	if r.Totals == nil {
		return 0
	}
	return r.Totals.Sent
}

// failures lists the error classes of c that are not zero, EAGAIN first.
func (c SendCounts) failures() string {
	var b strings.Builder
	for _, f := range []struct {
		name string
		n    uint64
	}{{"EAGAIN", c.EAGAIN}, {"ECONNREFUSED", c.ECONNREFUSED}, {"ENOBUFS", c.ENOBUFS}, {"EPERM", c.EPERM}, {"other errors", c.Other}} {
		if f.n > 0 {
			fmt.Fprintf(&b, ", %s %d", f.name, f.n)
		}
	}
	return b.String()
}

// AppendText appends the consumer lines of the text summary.
func (r *NetlinkReport) AppendText(b []byte) []byte {
	t := r.Totals
	n := len(r.Consumers)
	if r.Departed != nil {
		n += int(r.Departed.Consumers)
	}
	b = fmt.Appendf(b, "  consumers: %d, delivered %d, EAGAIN %d, ECONNREFUSED %d, ENOBUFS %d, EPERM %d, other errors %d\n",
		n, t.Sent, t.EAGAIN, t.ECONNREFUSED, t.ENOBUFS, t.EPERM, t.Other)
	for _, c := range r.Consumers {
		state := "active"
		if !c.Active {
			state = "gone"
		}
		if c.Fixed {
			state += ", fixed"
		} else {
			state += fmt.Sprintf(", pid %d uid %d", c.PID, c.UID)
		}
		b = fmt.Appendf(b, "    port %d (%s): sent %d%s\n", c.Port, state, c.Sent, c.failures())
	}
	if d := r.Departed; d != nil {
		b = fmt.Appendf(b, "    %d more that left earlier: sent %d%s\n", d.Consumers, d.Sent, d.failures())
	}
	if f := r.Refused; f != nil {
		b = fmt.Appendf(b, "  registrations refused: %d without CAP_NET_ADMIN (allowing unprivileged consumers admits them), %d over the limit of %d consumers\n",
			f.EPERM, f.ENOSPC, r.o.MaxConsumers)
	}
	return b
}

// Problem says why nothing reached anyone (ExitNoConsumer), or returns ""
// when something did or when nobody was expected: frames were offered, a
// destination was named (Dest, or MinConsumers registered consumers), and
// not one frame was queued to any consumer.
func (r *NetlinkReport) Problem(offered int64) (string, int) {
	o := r.o
	if offered == 0 || (o.Dest == 0 && o.MinConsumers == 0) || r.Totals.Sent > 0 {
		return "", ExitOK
	}
	var why []string
	for _, c := range o.final {
		if c.Offered() == 0 {
			continue
		}
		who := fmt.Sprintf("port %d", c.PortID)
		if c.Fixed {
			who = "fixed destination " + who
		}
		why = append(why, who+": "+undeliveredReason(c.SendCounts, c.Fixed))
	}
	if d := o.departed; d.Offered() > 0 {
		why = append(why, fmt.Sprintf("%d earlier consumer(s): %s", d.Consumers, undeliveredReason(d.SendCounts, false)))
	}
	if len(why) == 0 {
		return fmt.Sprintf("nothing delivered: no consumer was registered for any of the %d frame(s)", offered), ExitNoConsumer
	}
	return "nothing delivered: " + strings.Join(why, "; "), ExitNoConsumer
}

func undeliveredReason(c imp2.SendCounts, fixed bool) string {
	n := c.Offered()
	switch n {
	case c.ECONNREFUSED:
		if fixed {
			return fmt.Sprintf("connection refused for all %d frame(s): nobody bound there", n)
		}
		return "connection refused: its socket was closed without IMP2_CLOSE"
	case c.EAGAIN:
		return fmt.Sprintf("queue full (EAGAIN) for all %d frame(s): nobody reads it", n)
	}
	return fmt.Sprintf("none of %d frame(s) delivered%s", n, SendCounts(c).failures())
}
