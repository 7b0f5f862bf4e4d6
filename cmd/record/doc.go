// imp2-record records every netlink frame an imp2 producer sends to it into
// a pcapng trace (package pcapnl: zstd-compressed, LINKTYPE_NETLINK), and
// says exactly what it lost and why.
//
// Usage:
//
//	imp2-record -o trace.pcapng.zst [flags]
//	imp2-record -o - [flags] | tshark -r - ...
//
// It first checks its flags and opens -o (an existing regular file only with
// -force, which empties it once the registration succeeded; a file it
// created is removed again if the start fails), so that a peer never counts
// a consumer that is not going to record. Then it registers as an imp2
// consumer (IMP2_U_PID) on netlink unit -family with
// the peer -peer (0: the kernel module; another port: a user-space stand-in
// such as imp2-replay over NETLINK_USERSOCK, -family 2), records until
// -count frames, -duration, SIGINT or SIGTERM, then asks the peer for its
// counters (IMP2_GET_STATS) and unregisters (IMP2_CLOSE). IMP2_CLOSE is sent
// on every way out except SIGKILL (the module then notices the closed socket
// by itself).
//
// # The trace
//
// Both directions are recorded: the recorder's own IMP2_U_PID, IMP2_GET_STATS
// and IMP2_CLOSE as ToKernel frames, and everything it receives as ToUser
// frames, with nanosecond timestamps. Netlink carries no receive timestamp:
// the recorder reads the clock once per receive batch (recvmmsg), so the
// frames of one batch share the time at which the batch was read. The
// registration acknowledgement and the statistics reply are consumed by
// imp2.Conn; the recorder writes them back byte for byte as the module and
// imp2.Server send them (same header, pid, flags and payload).
//
// With -count N exactly N frames from the peer are written; frames that
// arrive before the final statistics reply are counted ("not recorded")
// but not written. Otherwise every frame read before the reply is written,
// so that the events in the trace plus the drops equal the peer's
// self_sent in the reply frame.
//
// # Drops
//
// Three accountings, reported separately (summary, -json):
//
//   - enobufs: ENOBUFS notifications from recvmsg (the kernel dropped at
//     least one event; the count is not known from this alone).
//   - seq_gaps: missing nlmsg_seq numbers in the peer's events, including
//     those after the last event read (from the peer's self_last_seq).
//   - meminfo: SO_MEMINFO drops of the socket (sk_drops).
//
// A gap is not always a loss of this recording. The module numbers each
// consumer's events itself, so with -peer 0 every gap is one. A user-space
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
//     peer dropped 0)";
//   - unexplained: without the peer's counters (-stats-timeout 0, the peer
//     gone, or not answering for this registration), the gaps beyond the
//     local evidence, which may be either; they fail the run like losses
//     (exit status 3), since nothing shows they were not this recording's.
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
// After a write error (a full disk) the summary counts as written only the
// frames the output accepted up to its last good flush, and the others
// read or sent as write_lost.
//
// # Exit status
//
//	0  the trace is complete and this recording lost nothing (gaps
//	   inherited from the source do not count)
//	1  recording failed midway (write error such as a full disk, receive
//	   error); the trace is valid up to its last flush
//	2  bad flags, or -o names an existing file and -force is not given
//	3  the trace is complete but this recording lost frames, or has gaps
//	   it cannot explain without the peer's counters (see the drop counts)
//	4  could not start: module not loaded, permission denied, no peer on
//	   that port, output not creatable
package main
