// imp2-record records every netlink frame an imp2 producer sends to it into
// a pcapng trace (package pcapnl: zstd-compressed, LINKTYPE_NETLINK), and
// says exactly what it lost and why.
//
// Usage:
//
//	imp2-record -o trace.pcapng.zst [flags]
//	imp2-record -o - [flags] | tshark -r - ...
//
// It registers as an imp2 consumer (IMP2_U_PID) on netlink unit -family with
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
// The peer's own counters (eagain, self_dropped) are reported beside them
// when it answers IMP2_GET_STATS. In the trace, each frame carries the
// sequence gap just before it as its pcapng drop count (for unnumbered
// streams: the SO_MEMINFO drops seen at an ENOBUFS); the interface
// statistics written at close hold frames received and the largest of the
// accountings as dropped.
//
// # Exit status
//
//	0  the trace is complete and nothing was lost
//	1  recording failed midway (write error such as a full disk, receive
//	   error); the trace is valid up to its last flush
//	2  bad flags
//	3  the trace is complete but frames were lost (see the drop counts)
//	4  could not start: module not loaded, permission denied, no peer on
//	   that port, output not creatable
package main
