/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * imp2 wire format: the one place it is defined.  The Go mirror is
 * imp2/wire.go; a test there checks the offsets below.
 *
 * Every message is a struct nlmsghdr followed by a payload.  The original
 * imp2 consumer reads sizeof(struct nlmsghdr) + 8 bytes per recvfrom(), so the
 * event payload keeps the legacy struct packet_info in its first 8 bytes and
 * appends the extension after it; nlmsg_len tells a new reader how much of
 * the extension is present.
 *
 * User -> kernel, sent to port 0 of the imp2 unit:
 *   IMP2_U_PID       register the sending socket as a consumer (bare header)
 *   IMP2_CLOSE       unregister the sending socket (bare header)
 *   IMP2_GET_STATS   ask for counters; answered with IMP2_STATS
 * A registration belongs to the sending socket itself (events go to its
 * kernel-verified port id), never to nlmsg_pid, and ends with the socket:
 * another socket that later binds the same port id inherits nothing.  With
 * NLM_F_ACK set, IMP2_U_PID and IMP2_CLOSE are acknowledged with
 * NLMSG_ERROR (error 0 on success; no event follows the acknowledgement of
 * IMP2_CLOSE); legacy consumers send flags 0 and get no acknowledgement.
 *
 * Kernel -> user:
 *   IMP2_K_MSG       one event per ICMP packet seen by the hook, unicast with
 *                    MSG_DONTWAIT to every consumer; nlmsg_seq is the
 *                    per-consumer sequence number (1, 2, 3, ...) counted for
 *                    every attempt, so a gap is a dropped event.
 *   IMP2_STATS       reply to IMP2_GET_STATS, payload struct imp2_stats.
 *
 * Byte order: fields copied from packet headers (src, dest, echo_id,
 * echo_seq) stay in network byte order, as the original sent src/dest;
 * fields the module makes are in host byte order, as usual for netlink.
 */
#ifndef _UAPI_IMP2_H
#define _UAPI_IMP2_H

#include <linux/types.h>

#define NL_IMP2			31	/* default netlink unit */

enum imp2_msg_type {
	IMP2_U_PID	= 0,
	IMP2_K_MSG	= 1,
	IMP2_CLOSE	= 2,
	/*
	 * New types start at NLMSG_MIN_TYPE so that generic netlink code
	 * (libraries, Wireshark) does not take them for NLMSG_DONE (3) or
	 * NLMSG_OVERRUN (4).  Types 0-2 collide with NLMSG_NOOP/ERROR too,
	 * but the original consumer fixed them.
	 */
	IMP2_GET_STATS	= 0x10,
	IMP2_STATS	= 0x11,
};

/* The original payload; a legacy consumer reads exactly this. */
struct packet_info {
	__be32 src;
	__be32 dest;
};

/* imp2_event.flags */
#define IMP2_EVF_ICMP		0x0001	/* icmp_* fields are valid */

/*
 * IMP2_K_MSG payload: 48 bytes, legacy part first.  echo_id/echo_seq, not
 * icmp_id/icmp_seq: glibc's <netinet/ip_icmp.h> defines those as macros.
 *
 * Bytes 32-47, the queue extension (module 2.1), are the consumer socket's
 * receive queue as the module saw it when it queued this event, so that a
 * consumer can draw its queue exactly, per event, instead of sampling
 * SO_MEMINFO.  Modules before 2.1 send the first IMP2_EVENT_LEN bytes only.
 *
 * rmem_alloc is sk_rmem_alloc read just before netlink_unicast(), plus this
 * event's truesize: the occupancy including this event once queued.  It has
 * to be read before: once queued the skb belongs to the reader.  The
 * consumer reading in between can only lower the real value, so it is an
 * upper bound, exact when the consumer does not dequeue in that window of
 * some hundred nanoseconds.
 *
 * netlink_attachskb() refuses an skb while the socket is
 * NETLINK_S_CONGESTED, and otherwise when the queue is too full: on
 * kernels with "netlink: Fix wraparounds of sk->sk_rmem_alloc" (2025, in
 * the stable series too, e.g. Debian's 6.1.0-57) when sk_rmem_alloc with
 * the skb would exceed sk_rcvbuf and the queue is not empty; before that
 * when sk_rmem_alloc without it already exceeded sk_rcvbuf.  So a queued
 * event has rmem_alloc <= rcvbuf (or = truesize), resp. rcvbuf + truesize.
 *
 * drop_rmem is sk_rmem_alloc read before the first failed attempt since
 * the previous queued event, the one that opened this event's nlmsg_seq
 * gap; 0 when there is no gap.  A gap always opens with an overflow: the
 * congested state that refuses the rest is set only by one (without
 * NETLINK_NO_ENOBUFS) and cleared only when the reader emptied the queue.
 * So rcvbuf - truesize < drop_rmem <= rcvbuf, resp. rcvbuf < drop_rmem <=
 * rcvbuf + truesize: within one truesize of the limit either way, unless
 * the gap began with an allocation failure.
 */
struct imp2_event {
	struct packet_info info;	/*  0: src, dest */
	__u64	tstamp_ns;		/*  8: CLOCK_MONOTONIC at unicast */
	__s32	ifindex;		/* 16: input device */
	__u8	icmp_type;		/* 20 */
	__u8	icmp_code;		/* 21 */
	__be16	echo_id;		/* 22: ICMP header bytes 4-5 */
	__be16	echo_seq;		/* 24: ICMP header bytes 6-7 */
	__u16	flags;			/* 26: IMP2_EVF_* */
	__u16	ip_len;			/* 28: IPv4 total length */
	__u16	reserved;		/* 30: zero */
	__u32	rmem_alloc;		/* 32: queued bytes with this event */
	__u32	rcvbuf;			/* 36: sk_rcvbuf then */
	__u32	truesize;		/* 40: this event's skb truesize */
	__u32	drop_rmem;		/* 44: sk_rmem_alloc at the gap's drop */
};

#define IMP2_LEGACY_LEN		sizeof(struct packet_info)	/*  8 */
/* The extension before the queue fields: what modules before 2.1 send. */
#define IMP2_EVENT_LEN		32
#define IMP2_QUEUE_EVENT_LEN	sizeof(struct imp2_event)	/* 48 */

/*
 * IMP2_STATS payload.  Counters are per network namespace; the self_*
 * fields describe the asking socket's own registration.
 */
struct imp2_stats {
	__u64	events;		/*  0: ICMP packets seen by the hook */
	__u64	unicast_ok;	/*  8: events queued to a consumer */
	__u64	eagain;		/* 16: consumer queue full (dropped) */
	__u64	econnrefused;	/* 24: consumer socket gone */
	__u64	enomem;		/* 32: skb allocation failed */
	__u64	other_err;	/* 40: any other unicast error */
	__u32	consumers;	/* 48: registered now */
	__u32	self_registered;/* 52: 1 if the asker is a consumer */
	__u64	self_sent;	/* 56: events queued to the asker */
	__u64	self_dropped;	/* 64: events the asker missed */
	__u32	self_last_seq;	/* 72: last nlmsg_seq given to the asker */
	__u32	reserved;	/* 76: zero */
};

#define IMP2_STATS_LEN		sizeof(struct imp2_stats)	/* 80 */

#endif /* _UAPI_IMP2_H */
