package record_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/filter"
	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/pcapnl"
	"github.com/imp2/imp2/record"
)

// flagLike matches a command-line flag such as -snaplen.
var flagLike = regexp.MustCompile(`(^|\s)-[a-z]`)

// TestOptionErrors: a bad setting is an *OptionError naming its field,
// in the engine's terms (no command-line flag), before anything is opened.
func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		field string
		set   func(*record.Options)
	}{
		{"Family", func(o *record.Options) { o.Family = 40 }},
		{"Path", func(o *record.Options) { o.Path = "" }},
		{"Duration", func(o *record.Options) { o.Duration = -time.Second }},
		{"Flush", func(o *record.Options) { o.Flush = 0 }},
		{"StatsTimeout", func(o *record.Options) { o.StatsTimeout = -1 }},
		{"SnapLen", func(o *record.Options) { o.SnapLen = 8 }},
		{"Batch", func(o *record.Options) { o.Batch = 0 }},
		{"Buffer", func(o *record.Options) { o.Buffer = 1024 }},
		{"RcvBuf", func(o *record.Options) { o.RcvBuf = -1 }},
		{"RcvBuf", func(o *record.Options) { o.RcvBuf = 4 << 30 }},
		{"Buffer", func(o *record.Options) { o.Buffer = 4 << 30 }},
	} {
		o := record.DefaultOptions(filepath.Join(dir, "t.pcapng.zst"))
		c.set(&o)
		s, err := record.Run(context.Background(), o)
		var oe *record.OptionError
		if s != nil || !errors.As(err, &oe) || oe.Field != c.field || !strings.Contains(err.Error(), "Options."+c.field) || flagLike.MatchString(err.Error()) {
			t.Errorf("%s: %v, %v; want an *OptionError naming Options.%s and no flag", c.field, s, err, c.field)
		}
	}
}

// recordFrom runs a recording from k into a buffer while send feeds it.
func recordFrom(t *testing.T, k *imp2test.Kernel, o record.Options, send func()) (*record.Summary, error, []pcapnl.Frame) {
	t.Helper()
	var out bytes.Buffer
	o.Family, o.Peer, o.Path, o.Output = imp2.UserSockFamily, k.PortID(), "buffer", &out
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		if k.WaitConsumers(ctx, 1) == nil {
			send()
		}
	}()
	s, err := record.Run(ctx, o)
	if s == nil {
		t.Fatalf("Run: %v", err)
	}
	rd, rerr := pcapnl.NewReader(&out)
	if rerr != nil {
		t.Fatal(rerr)
	}
	defer rd.Close()
	var frames []pcapnl.Frame
	for {
		f, rerr := rd.Next()
		if rerr == io.EOF {
			return s, err, frames
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
		f.Data = bytes.Clone(f.Data)
		frames = append(frames, f)
	}
}

// TestScriptedPeerDrops: the peer says it dropped 3 events to us (its
// self_dropped, which no gap or socket counter shows): they are this
// recording's losses, a *LossError, and the statistics reply in the trace
// is the one the peer sent, scripted counters included.
func TestScriptedPeerDrops(t *testing.T) {
	k, err := imp2test.New(imp2test.Config{AllowUnprivileged: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	k.ScriptStats(func(_ uint32, st imp2.Stats) imp2.Stats { st.SelfDropped = 3; return st })
	o := record.DefaultOptions("")
	o.Count = 10
	s, err, frames := recordFrom(t, k, o, func() {
		for n := uint32(1); n <= 10; n++ {
			k.SendEvents(imp2test.Event(n))
		}
	})
	var le *record.LossError
	if !errors.As(err, &le) || le.Lost != 3 || s.Drops.Lost != 3 || s.Drops.SeqGaps != 0 || s.Events != 10 {
		t.Errorf("Run: %v, drops %+v, events %d; want a LossError of 3, no gaps, 10 events", err, s.Drops, s.Events)
	}
	if len(frames) != 15 {
		t.Fatalf("%d frames; want 15: register, ack, 10 events, stats request and reply, close", len(frames))
	}
	st, err := imp2.ParseStats(frames[13].Data[imp2.HeaderLen:])
	if err != nil || frames[13].Direction != pcapnl.ToUser || st.SelfDropped != 3 || st.SelfSent != 10 {
		t.Errorf("the stats reply in the trace: %+v, %v; want to user, self dropped 3, sent 10", st, err)
	}
}

// lossyReplay is a fake kernel and a trace of events 1-30 with 11-15 lost
// upstream, for a recording of its 25 events.
func lossyReplay(t *testing.T) (*imp2test.Kernel, *bytes.Buffer, record.Options) {
	t.Helper()
	k, err := imp2test.New(imp2test.Config{AllowUnprivileged: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	evs := imp2test.Events(1, 30)
	evs = append(evs[:10], evs[15:]...) // 11-15 lost upstream
	var trace bytes.Buffer
	if err := imp2test.WriteTrace(&trace, evs); err != nil {
		t.Fatal(err)
	}
	o := record.DefaultOptions("")
	o.Count = 25
	return k, &trace, o
}

// TestInheritedGaps: a replayed trace's own gaps, with the peer's
// counters saying nothing was dropped to us, are inherited, not lost.
func TestInheritedGaps(t *testing.T) {
	k, trace, o := lossyReplay(t)
	s, err, _ := recordFrom(t, k, o, func() { k.Replay(trace) })
	if err != nil || s.Drops.SeqGaps != 5 || s.Drops.Inherited != 5 || s.Drops.Lost != 0 || s.FirstSeq != 1 || s.LastSeq != 30 {
		t.Errorf("Run: %v, drops %+v, seq %d-%d; want no error, 5 gaps all inherited, seq 1-30", err, s.Drops, s.FirstSeq, s.LastSeq)
	}
}

// TestFilterKeepsAccounting: the capture filter leaves frames out after
// their numbers were tracked, so the only gaps are the trace's own (11-15,
// inherited), not the event it filtered out nor the conversation's
// frames; the filtered are counted and the rest written in order.
func TestFilterKeepsAccounting(t *testing.T) {
	k, trace, o := lossyReplay(t)
	var err error
	if o.Filter, err = filter.Parse("type=event src!=198.18.0.20"); err != nil {
		t.Fatal(err)
	}
	s, err, frames := recordFrom(t, k, o, func() { k.Replay(trace) })
	if err != nil || s.Drops.SeqGaps != 5 || s.Drops.Inherited != 5 || s.Drops.Lost != 0 || s.Events != 25 || s.Frames != 24 {
		t.Errorf("Run: %v, drops %+v, events %d, frames %d; want no error, 5 gaps all inherited, 25 events, 24 written", err, s.Drops, s.Events, s.Frames)
	}
	// Filtered: event 20 and the conversation (register, ack, stats
	// request and reply, close).
	if s.Filtered != 1+5 || len(frames) != 24 {
		t.Errorf("filtered %d, %d frames in the trace; want 6 and 24", s.Filtered, len(frames))
	}
	for _, f := range frames {
		if h, _ := f.Header(); h.Type != imp2.TypeEvent || h.Seq == 20 || h.Seq > 10 && h.Seq < 16 {
			t.Errorf("frame %+v in the trace", h)
		}
	}
}

// TestCoalesceFewerReads: behind a trickle (an event every 50 µs, far
// slower than the recorder reads), reads take one or two events each
// without Coalesce (on a quiet machine) and about a hundred with 5ms, the
// time the rate takes to fill a batch capped; both record every event and
// lose none.
func TestCoalesceFewerReads(t *testing.T) {
	k, err := imp2test.New(imp2test.Config{AllowUnprivileged: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	const n = 400
	batches := map[time.Duration]uint64{}
	for _, co := range []time.Duration{0, 5 * time.Millisecond} {
		o := record.DefaultOptions("")
		o.Count, o.Coalesce = n, co
		s, err, frames := recordFrom(t, k, o, func() {
			// Paced by the clock, not time.Sleep, which takes a
			// millisecond here.
			start := time.Now()
			for i := uint32(1); i <= n; i++ {
				for time.Since(start) < time.Duration(i)*50*time.Microsecond {
				}
				k.SendEvents(imp2test.Event(i))
			}
		})
		if err != nil || s.Events != n || s.Drops.Lost != 0 || len(frames) < n {
			t.Fatalf("Coalesce %v: %v, %d events, %d frames, drops %+v; want all %d, none lost", co, err, s.Events, len(frames), s.Drops, n)
		}
		// With Coalesce, no wait only if the reads came back full (the
		// recorder did not run for milliseconds, on a loaded machine):
		// then there was nothing to wait for.
		allFull := s.Batches <= uint64(n/o.Batch+2)
		if s.WaitNoRoom || (co == 0 && s.Waits > 0) || (co > 0 && s.Waits == 0 && !allFull) {
			t.Errorf("Coalesce %v: %d waits in %d reads, too small %v; want some exactly when Coalesce is set and reads come back short",
				co, s.Waits, s.Batches, s.WaitNoRoom)
		}
		batches[co] = s.Batches
	}
	plain, fewer := batches[0], batches[5*time.Millisecond]
	t.Logf("%d events in %d reads without Coalesce, %d with 5ms", n, plain, fewer)
	// Not held against the plain run: on a loaded machine the recorder
	// may not run for milliseconds, and then its reads fill up anyway.
	if fewer > n/8 {
		t.Errorf("want at most %d reads with Coalesce: each wait gathers some 100 at this rate", n/8)
	}
}

// TestCoalesceSmallRcvBuf: a receive buffer too small for a burst to fit
// during a wait (the stock rmem_max, 212992, granted 425984) makes the recorder read without
// waiting, and the summary says why.
func TestCoalesceSmallRcvBuf(t *testing.T) {
	k, err := imp2test.New(imp2test.Config{AllowUnprivileged: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	o := record.DefaultOptions("")
	o.Count, o.RcvBuf = 50, 212992 // the stock rmem_max, granted twice
	s, err, _ := recordFrom(t, k, o, func() {
		for i := uint32(1); i <= 50; i++ {
			k.SendEvents(imp2test.Event(i))
		}
	})
	var text strings.Builder
	s.WriteText(&text)
	if err != nil || s.Waits != 0 || !s.WaitNoRoom || !strings.Contains(text.String(), "too small to wait between reads") {
		t.Errorf("%v, %d waits, too small %v:\n%s\nwant no wait, and the summary saying the buffer is too small", err, s.Waits, s.WaitNoRoom, text.String())
	}
}
