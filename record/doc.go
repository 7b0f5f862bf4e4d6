// Package record records every netlink frame an imp2 producer sends to a
// consumer into a trace (package pcapnl, LINKTYPE_NETLINK; pcapng or
// classic pcap, zstd, gzip or plain, as the file name asks:
// pcapnl.FormatFor), and says exactly what it lost and why. It is the
// engine of imp2-record; a Go program or test records with
//
//	s, err := record.Run(ctx, record.DefaultOptions("trace.pcapng.zst"))
//
// Run first checks the options and opens the output (an existing regular
// file only with Options.Force, emptied once the registration succeeded; a
// file it created is removed again if the start fails), so that a peer
// never counts a consumer that is not going to record. Then it registers
// as an imp2 consumer (IMP2_U_PID) on netlink unit Options.Family with the
// peer Options.Peer (0: the kernel module; another port: a user-space
// stand-in such as imp2.Server or imp2-replay over NETLINK_USERSOCK),
// records until Count frames, Duration, Recorder.Stop or the context,
// then asks the peer for its counters (IMP2_GET_STATS) and unregisters
// (IMP2_CLOSE). The socket is connect()ed to the peer
// (imp2.Config.Connect): the kernel refuses frames from any other port,
// so everything in the trace is the conversation with the peer.
//
// # Cost
//
// The receive loop runs on a thread of its own (LockOSThread) that only
// reads, accounts and encodes: each recvmmsg batch goes to the
// pcapnl.Writer whole (WriteFrames), and zstd and the output run behind
// its queue on another goroutine. Summary.ReceiveCPU is that thread's CPU
// time, the figure cmd/record's BenchmarkVsSink holds against the C
// reference consumer's; BenchmarkTraceWrite measures the loop's own work
// without the socket.
//
// # The trace
//
// Both directions are recorded: every control frame the consumer sends
// (IMP2_U_PID, IMP2_GET_STATS, IMP2_CLOSE) as ToKernel frames, and
// everything it receives, the registration acknowledgement and the
// statistics reply included, as ToUser frames, byte for byte as they went
// over the socket (imp2.Config.OnControl), with nanosecond timestamps.
// Netlink carries no receive timestamp: the recorder reads the clock once
// per receive batch (recvmmsg), so the frames of one batch share the time
// at which the batch was read.
//
// With a Count of N exactly N frames from the peer are received (and
// written, but for those a Filter leaves out); frames
// that arrive before the final statistics reply are counted ("not
// recorded") but not written. Otherwise every frame read before the reply
// is written, so that the events in the trace plus the drops equal the
// peer's self_sent in the reply frame.
//
// # Drops
//
// Three accountings, reported separately (Summary.Drops):
//
//   - enobufs: ENOBUFS notifications from recvmsg (the kernel dropped at
//     least one event; the count is not known from this alone).
//   - seq_gaps: missing nlmsg_seq numbers in the peer's events
//     (imp2.SeqTracker), including those after the last event read (from
//     the peer's self_last_seq).
//   - meminfo: SO_MEMINFO drops of the socket (sk_drops).
//
// A gap is not always a loss of this recording. The module numbers each
// consumer's events itself, so with Peer 0 every gap is one. A user-space
// peer such as imp2-replay forwards numbers made upstream: replaying a
// trace that was recorded with losses reproduces its gaps. So the
// recorder reports:
//
//   - lost: losses of this recording, the largest of the peer's
//     self_dropped for this registration (its EAGAIN, which a user-space
//     sender's receiver never sees as ENOBUFS or SO_MEMINFO), the local
//     evidence (SO_MEMINFO drops; at least 1 after an ENOBUFS) and, from
//     the module, the gaps;
//   - inherited: the rest of the gaps, seq_gaps - lost, when the peer's
//     counters are known: "seq gaps 765 (765 inherited from the source: the
//     peer dropped 0; 0 of them after the last event read)";
//   - unexplained: without the peer's counters (StatsTimeout 0, the peer
//     gone, or not answering for this registration), the gaps beyond the
//     local evidence, which may be either; they make a LossError like
//     losses, since nothing shows they were not this recording's.
//
// The peer's own counters (eagain, self_dropped) are reported beside them
// when it answers IMP2_GET_STATS. In the trace, a frame carries as its
// pcapng drop count only the losses this socket saw just before it: as
// much of the gap before it as the socket's own drops cover (SO_MEMINFO,
// read when a gap outruns what the ENOBUFS notifications already showed);
// for unnumbered streams, the SO_MEMINFO drops seen at an ENOBUFS. Losses
// that leave no mark on the socket (a user-space sender's EAGAIN, the
// module's rare ENOMEM) have no known place and are only in the totals.
// The interface statistics written at close hold frames received and lost
// as dropped.
//
// # Rotation and the capture filter
//
// With FileSize, FileInterval or Files the trace is a set of files, each
// a complete trace, as tcpdump's -C, -G and -W (rotate.go says how they
// are named, when a file ends and what the ring keeps on disk); the
// accounting above is one across them and Summary.Files lists them. The
// Filter (package filter) leaves frames out of the trace after their
// sequence numbers and drops were accounted: they are counted in
// Summary.Filtered and never make gaps or losses.
//
// After a write error (a full disk) the summary counts as written only the
// frames the output accepted up to its last good flush, and the others
// read or sent as write_lost.
package record
