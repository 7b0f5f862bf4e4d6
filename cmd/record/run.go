package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/pcapnl"
)

// run is the whole program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "imp2-record: %v\n", err)
		return exitUsage
	}
	if cfg.out == "-" && isTerminal(os.Stdout) {
		fmt.Fprintln(stderr, "imp2-record: -o -: stdout is a terminal; redirect it or name a file")
		return exitUsage
	}

	r := &recorder{cfg: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	// SIGPIPE too: a closed stdout must be a write error (and IMP2_CLOSE),
	// not a silent death.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			reason := stopSIGINT
			switch sig {
			case syscall.SIGPIPE:
				continue
			case syscall.SIGTERM:
				reason = stopSIGTERM
			}
			if !r.stop(reason) {
				cancel() // a second signal: stop waiting for the peer's counters
			}
		}
	}()

	// Everything that can refuse the command line or the output does so
	// before the registration: a peer never counts a consumer that is not
	// going to record (imp2-replay -min-consumers waits for real ones).
	o, err := openOutput(cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "imp2-record: %v\n", outputError(cfg, err, false))
		if errors.Is(err, errExists) {
			return exitUsage
		}
		return exitStart
	}
	reg, ack, tReg, tAck, err := r.dial()
	if err != nil {
		o.abandon()
		fmt.Fprintf(stderr, "imp2-record: %v\n", dialError(cfg, err))
		return exitStart
	}
	cw := &countingWriter{w: o.w}
	var w *pcapnl.Writer
	if err = o.empty(); err == nil {
		w, err = pcapnl.NewWriter(cw, pcapnl.WriterOptions{
			Compression:   cfg.compression,
			ZstdLevel:     cfg.zstdLevel,
			FlushInterval: cfg.flush,
			Application:   "imp2-record",
			Description:   fmt.Sprintf("imp2 consumer port %d, peer %d", r.port, cfg.peer),
			Family:        uint16(cfg.family),
			SnapLen:       cfg.snaplen + pcapnl.PseudoHeaderLen,
			Queue:         cfg.buffer,
		})
	}
	if err != nil {
		r.conn.Close()
		o.abandon()
		fmt.Fprintf(stderr, "imp2-record: %v\n", outputError(cfg, err, false))
		return exitStart
	}

	r.tw, r.msgs = newTraceWriter(w, cfg, func() uint64 { d, _ := r.memGrowth(); return d }), newBatch(cfg)
	r.control(tReg, pcapnl.ToKernel, reg)
	if ack != nil {
		r.control(tAck, pcapnl.ToUser, ack)
	}
	r.start = time.Now()
	if cfg.duration > 0 {
		t := time.AfterFunc(cfg.duration, func() { r.stop(stopDuration) })
		defer t.Stop()
	}
	var prog *progress
	if !cfg.quiet && isTerminal(os.Stderr) {
		prog = startProgress(stderr, r, cw)
	}

	r.receive()
	r.finish(ctx)
	if prog != nil {
		prog.end()
	}

	s := r.summarize()
	w.SetInterfaceStats(s.ToUser+s.ToKernel+s.Drops.Lost, s.Drops.Lost)
	var errs []error
	writeErr := r.tw.err
	if err := w.Close(); writeErr == nil {
		writeErr = err
	}
	if writeErr != nil {
		errs = append(errs, outputError(cfg, writeErr, true))
	}
	s.setWriter(w.QueueStats())
	s.setWritten(w.FramesOut(), &r.tw.acct)
	if err := o.close(); err != nil && writeErr == nil {
		errs = append(errs, outputError(cfg, err, true))
	}
	if r.recvErr != nil {
		errs = append(errs, fmt.Errorf("receiving: %w", r.recvErr))
	}
	s.FileBytes = cw.n.Load()
	switch {
	case len(errs) > 0:
		s.Error = errors.Join(errs...).Error()
		s.ExitCode = exitError
	case s.Drops.Lost > 0 || s.Drops.Unexplained > 0:
		s.ExitCode = exitLost
	default:
		s.ExitCode = exitOK
	}
	report(cfg, s, stdout, stderr)
	for _, err := range errs {
		fmt.Fprintf(stderr, "imp2-record: %v\n", err)
	}
	return s.ExitCode
}

// report prints the summary: text on stderr unless -q, JSON with -json (on
// stdout, or on stderr in place of the text when the trace is on stdout).
func report(cfg *config, s *summary, stdout, stderr io.Writer) {
	jsonOut := stdout
	if cfg.out == "-" {
		jsonOut = stderr
	}
	if !cfg.quiet && !(cfg.json && cfg.out == "-") {
		s.writeText(stderr)
	}
	if cfg.json {
		s.writeJSON(jsonOut)
	}
}

func (r *recorder) summarize() *summary {
	a := &r.tw.acct
	s := &summary{
		Output: r.cfg.out, Family: r.cfg.family, Peer: r.cfg.peer, Port: r.port, RcvBuf: r.rcvbuf,
		Stop: r.stopReason(), Seconds: r.end.Sub(r.start).Seconds(), Received: r.received.Load(),
		Batches: r.batches,
		Frames:  a.toUser + a.toKernel, ToUser: a.toUser, ToKernel: a.toKernel, Events: a.events,
		DataBytes: a.dataBytes, Late: a.lateFrames, NotRecorded: a.notRecorded, Truncated: a.truncated,
		SeqBackward: a.seqBackward, Unnumbered: a.unnumbered,
	}
	if s.Seconds > 0 {
		s.Rate = float64(s.Received) / s.Seconds
	}
	if a.haveSeq {
		s.FirstSeq, s.LastSeq = a.firstSeq, a.lastSeq
	}
	d := &s.Drops
	d.ENOBUFS = r.overruns.Load()
	d.SeqGaps = a.seqGaps
	d.InTrace = a.dropCounts
	ps := r.peerStats
	peerKnown := ps != nil && ps.SelfRegistered
	if peerKnown && (a.haveSeq || a.source) {
		if t := int32(ps.SelfLastSeq - a.lastSeq); t > 0 {
			d.SeqTrailing = uint64(t)
			d.SeqGaps += d.SeqTrailing
		}
	}
	if r.memErr == nil {
		d.MemInfo = uint64(r.memInfo.Drops)
	}
	// What this socket saw itself; an ENOBUFS means at least one drop.
	local := max(d.MemInfo, d.InTrace)
	if d.ENOBUFS > 0 {
		local = max(local, 1)
	}
	switch {
	case a.source:
		// The module numbers our events: every gap is ours.
		d.Lost = max(d.SeqGaps, local)
		if peerKnown {
			d.Lost = max(d.Lost, ps.SelfDropped)
		}
	case peerKnown:
		// The peer's drops to us (EAGAIN at a user-space sender, which
		// this socket never sees) are ours; the rest of the gaps were in
		// the numbering before the peer sent it.
		d.Lost = max(ps.SelfDropped, local)
		d.Inherited = d.SeqGaps - min(d.Lost, d.SeqGaps)
	default:
		// No counters from the peer: gaps beyond the local evidence may
		// be the peer's drops to us or upstream ones; they are reported
		// as unexplained and, to be safe, fail the run like losses.
		d.Lost = local
		d.Unexplained = d.SeqGaps - min(d.Lost, d.SeqGaps)
	}
	s.PeerStats = newPeerStats(r.peerStats)
	switch {
	case r.cfg.statsTimeout == 0:
		s.PeerError = "not asked (-stats-timeout 0)"
	case r.statsErr != nil:
		s.PeerError = r.statsErr.Error()
	}
	return s
}

// setWritten counts as written only the frames that reached the output
// (all of them unless a write error cut it); the rest the recorder read or
// sent were lost to the write error.
func (s *summary) setWritten(out uint64, a *accounting) {
	given := a.toUser + a.toKernel
	s.Frames = min(out, given)
	s.WriteLost = given - s.Frames + a.discarded
}

// setWriter reports how the trace writer's queue fared.
func (s *summary) setWriter(q pcapnl.QueueStats) {
	wr := &s.Writer
	wr.BufferBytes, wr.MaxQueuedBytes = q.Bytes, q.MaxQueued
	wr.Stalls, wr.StallSeconds = q.Waits, q.WaitTime.Seconds()
	wr.FellBehind = wr.Stalls > 0
}

// errExists refuses to overwrite an existing file without -force.
var errExists = errors.New("the file exists (-force overwrites it)")

// output is the trace destination, opened before the registration.
type output struct {
	w       io.Writer
	f       *os.File // nil for stdout
	path    string
	created bool // by this run: removed again if the recording never starts
	clear   bool // an existing regular file, emptied only once registered (-force)
}

// openOutput opens the trace destination. Like a shell's noclobber, it
// refuses an existing regular file unless -force (the recorder may be
// about to hold the only copy of an incident, and so may that file);
// devices and FIFOs (/dev/null, a pipe to a reader) are written as they
// are.
func openOutput(cfg *config, stdout io.Writer) (*output, error) {
	if cfg.out == "-" {
		return &output{w: stdout}, nil
	}
	f, err := os.OpenFile(cfg.out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		return &output{w: f, f: f, path: cfg.out, created: true}, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	st, err := os.Stat(cfg.out)
	regular := err == nil && st.Mode().IsRegular()
	if regular && !cfg.force {
		return nil, errExists
	}
	if f, err = os.OpenFile(cfg.out, os.O_WRONLY|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	return &output{w: f, f: f, path: cfg.out, clear: regular}, nil
}

// empty truncates a file that -force overwrites, once the recording is
// sure to start, so that a failed start leaves the old trace as it was.
func (o *output) empty() error {
	if !o.clear {
		return nil
	}
	return o.f.Truncate(0)
}

// abandon closes an output the recording never used; a file this run
// created goes too, so that a failed start leaves nothing behind (and no
// file for the next try to need -force for).
func (o *output) abandon() {
	if o.f == nil {
		return
	}
	o.f.Close()
	if o.created {
		os.Remove(o.path)
	}
}

// close closes the trace file at the end (nothing for stdout).
func (o *output) close() error {
	if o.f == nil {
		return nil
	}
	return o.f.Close()
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
