package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

	reg, ack, tReg, tAck, err := r.dial()
	if err != nil {
		fmt.Fprintf(stderr, "imp2-record: %v\n", dialError(cfg, err))
		return exitStart
	}
	out, closeOut, err := openOutput(cfg, stdout)
	if err != nil {
		r.conn.Close()
		fmt.Fprintf(stderr, "imp2-record: %v\n", outputError(cfg, err, false))
		return exitStart
	}
	cw := &countingWriter{w: out}
	w, err := pcapnl.NewWriter(cw, pcapnl.WriterOptions{
		Compression:   cfg.compression,
		ZstdLevel:     cfg.zstdLevel,
		FlushInterval: cfg.flush,
		Application:   "imp2-record",
		Description:   fmt.Sprintf("imp2 consumer port %d, peer %d", r.port, cfg.peer),
		Family:        uint16(cfg.family),
		SnapLen:       cfg.snaplen + pcapnl.PseudoHeaderLen,
		Queue:         cfg.buffer,
	})
	if err != nil {
		r.conn.Close()
		closeOut()
		fmt.Fprintf(stderr, "imp2-record: %v\n", outputError(cfg, err, false))
		return exitStart
	}

	r.tw, r.msgs = newTraceWriter(w, cfg), newBatch(cfg)
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
	w.SetInterfaceStats(s.Frames+s.Drops.Lost, s.Drops.Lost)
	var errs []error
	writeErr := r.tw.err
	if err := w.Close(); writeErr == nil {
		writeErr = err
	}
	if writeErr != nil {
		errs = append(errs, outputError(cfg, writeErr, true))
	}
	s.setWriter(w.QueueStats())
	if err := closeOut(); err != nil && writeErr == nil {
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
	case s.Drops.Lost > 0:
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
	if ps := r.peerStats; ps != nil && ps.SelfRegistered && (a.haveSeq || a.fromOne) {
		if t := int32(ps.SelfLastSeq - a.lastSeq); t > 0 {
			d.SeqTrailing = uint64(t)
			d.SeqGaps += d.SeqTrailing
		}
	}
	if r.memErr == nil {
		d.MemInfo = uint64(r.memInfo.Drops)
	}
	d.Lost = max(d.SeqGaps, d.MemInfo)
	if r.peerStats != nil && r.peerStats.SelfRegistered {
		d.Lost = max(d.Lost, r.peerStats.SelfDropped)
	}
	if d.ENOBUFS > 0 {
		d.Lost = max(d.Lost, 1)
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

// setWriter reports how the trace writer's queue fared.
func (s *summary) setWriter(q pcapnl.QueueStats) {
	wr := &s.Writer
	wr.BufferBytes, wr.MaxQueuedBytes = q.Bytes, q.MaxQueued
	wr.Stalls, wr.StallSeconds = q.Waits, q.WaitTime.Seconds()
	wr.FellBehind = wr.Stalls > 0
}

// openOutput opens the trace destination; closeOut flushes and closes it.
func openOutput(cfg *config, stdout io.Writer) (io.Writer, func() error, error) {
	if cfg.out == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(cfg.out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
