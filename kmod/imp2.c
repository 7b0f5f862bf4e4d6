// SPDX-License-Identifier: GPL-2.0
/*
 * imp2: report IPv4 ICMP packets to user space over a custom netlink unit.
 *
 * A port of the classic imp2 example to current kernels.  The wire format
 * is defined in imp2_uapi.h.  In every network namespace the module owns
 * one kernel netlink socket on unit @unit and one IPv4 PRE_ROUTING hook.
 * For every ICMP packet the hook sees, each registered consumer of that
 * namespace gets its own IMP2_K_MSG, unicast with MSG_DONTWAIT.
 *
 * A registration belongs to the socket that sent IMP2_U_PID, held by
 * reference, not to its port id: the netlink core gives a closing socket's
 * port back (netlink_remove) before it marks the socket SOCK_DEAD and long
 * before NETLINK_URELEASE, so for a while the port may belong to a new
 * socket while the old registration is still listed.  Three rules keep
 * that from mattering (see imp2_tag() and imp2_add()):
 *  - the hook sends to no consumer whose socket is dead, and
 *    NETLINK_URELEASE removes only registrations of dead sockets, never a
 *    fresh registration of a new socket that has the same port id;
 *  - an event can only be queued to a registered socket, whichever socket
 *    holds the port when netlink_unicast() looks it up: event skbs are
 *    marked pfmemalloc and only registered sockets carry SOCK_MEMALLOC,
 *    and the core's sk_filter() drops such an skb at any other socket;
 *  - a socket that registers with the port of a stale registration gets
 *    its mark only after that registration is gone and an RCU grace
 *    period has passed, so no registered socket gets another's events.
 *
 * Locking:
 *  - imp2_net.lock (BH-safe spinlock) serialises changes to the consumer
 *    list; the hook walks the list under RCU (nf_hook holds rcu_read_lock)
 *    and entries are freed, and their socket reference dropped, after a
 *    grace period (imp2_consumer_free).
 *  - imp2_net.reg_mutex serialises IMP2_U_PID and IMP2_CLOSE, which may
 *    sleep (grace periods, the socket lock) and keep a socket's mark in
 *    step with its registration.
 *  - imp2_consumer.tx_lock makes "take the next sequence number" and
 *    "queue the skb on the consumer's socket" one step, so a consumer's
 *    queue is always in nlmsg_seq order even when the hook runs on several
 *    CPUs at once: a gap in nlmsg_seq is always a dropped event, never a
 *    reordering.
 *  - Counters are atomic64_t and read without locks.
 *  - The queue extension reads the registered socket's sk_rmem_alloc and
 *    sk_rcvbuf through imp2_consumer.sk: the hook runs under RCU and the
 *    registration holds a reference that imp2_consumer_free() drops only
 *    after a grace period, so the socket is not freed under the read,
 *    whether it is being closed, its namespace dismantled (the hook is
 *    unregistered, and a grace period passes, before imp2_net_exit) or the
 *    module unloaded (the same, and rcu_barrier()).  A socket that is
 *    released meanwhile is still memory with valid counters.
 *
 * Permissions: registering (IMP2_U_PID) needs CAP_NET_ADMIN in the user
 * namespace owning the network namespace, like nflog or nlmon: a consumer
 * sees addresses of all ICMP traffic of the namespace.  The module
 * parameter allow_unprivileged=1 lifts that (the original module had no
 * check).  IMP2_CLOSE only ever removes the sender itself, and
 * IMP2_GET_STATS only returns counters that /proc/net/imp2 shows to
 * everyone, so neither needs a capability.
 *
 * Units: any unit nobody else has registered; NETLINK_USERSOCK is refused
 * at load, because its user sockets do not pin the module (imp2_init()).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/icmp.h>
#include <linux/ip.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/proc_fs.h>
#include <linux/rculist.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <net/ip.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/netns/generic.h>
#include <net/sock.h>

#include "imp2_uapi.h"

#define IMP2_RELEASE "2.1.0"

/*
 * Test-only variants: `make -C kmod IMP2_TEST_DELAY_NS=<ns>` compiles a
 * busy wait of that many nanoseconds into the hook's per-event path, the
 * known regression the CI gate's detection power is calibrated on (see
 * the README's gate section).  The version string and a modinfo field
 * (test_delay_ns) say so, so that such a build can never pass for a
 * release; the normal build has none of it.
 */
#ifdef IMP2_TEST_DELAY_NS
#include <linux/delay.h>
#define IMP2_VERSION IMP2_RELEASE "-test-delay-" __stringify(IMP2_TEST_DELAY_NS) "ns"
MODULE_INFO(test_delay_ns, __stringify(IMP2_TEST_DELAY_NS));
#else
#define IMP2_VERSION IMP2_RELEASE
#endif

static int unit = NL_IMP2;
module_param(unit, int, 0444);
MODULE_PARM_DESC(unit, "netlink unit (protocol number), default 31");

static unsigned int max_consumers = 64;
module_param(max_consumers, uint, 0644);
MODULE_PARM_DESC(max_consumers,
		 "maximum consumers per network namespace, default 64");

static bool allow_unprivileged;
module_param(allow_unprivileged, bool, 0644);
MODULE_PARM_DESC(allow_unprivileged,
		 "let sockets without CAP_NET_ADMIN register, default N");

struct imp2_consumer {
	struct list_head node;		/* in imp2_net.consumers, RCU */
	struct rcu_head rcu;
	struct sock *sk;		/* the registered socket; a reference */
	u32 portid;			/* its port id, where events are sent */
	bool linked;			/* on the list; under imp2_net.lock */
	spinlock_t tx_lock;		/* orders seq and enqueue */
	u32 seq;			/* last nlmsg_seq used; under tx_lock */
	bool in_gap;			/* failed since the last queued event */
	u32 gap_rmem;			/* sk_rmem_alloc at that first failure */
	atomic64_t sent;
	atomic64_t dropped;
};

struct imp2_net {
	struct sock *nlsk;
	struct mutex reg_mutex;		/* IMP2_U_PID and IMP2_CLOSE */
	spinlock_t lock;		/* writers of @consumers */
	struct list_head consumers;
	unsigned int nconsumers;	/* under @lock */
	atomic64_t events;
	atomic64_t unicast_ok;
	atomic64_t eagain;
	atomic64_t econnrefused;
	atomic64_t enomem;
	atomic64_t other_err;
};

static unsigned int imp2_net_id __read_mostly;

static inline struct imp2_net *imp2_pernet(const struct net *net)
{
	return net_generic(net, imp2_net_id);
}

static void imp2_consumer_free(struct rcu_head *head)
{
	struct imp2_consumer *c = container_of(head, struct imp2_consumer, rcu);

	/*
	 * Often the last reference of a closed socket, as in netlink's own
	 * deferred_put_nlk_sk(): sk_free() is fine in this context.
	 */
	sock_put(c->sk);
	kfree(c);
}

/* Caller holds in->lock. */
static void imp2_unlink_locked(struct imp2_net *in, struct imp2_consumer *c)
{
	if (!c->linked)
		return;
	c->linked = false;
	list_del_rcu(&c->node);
	in->nconsumers--;
	call_rcu(&c->rcu, imp2_consumer_free);
}

/* Caller holds in->lock or rcu_read_lock(). */
static struct imp2_consumer *imp2_find(struct imp2_net *in,
				       const struct sock *sk)
{
	struct imp2_consumer *c;

	list_for_each_entry_rcu(c, &in->consumers, node,
				lockdep_is_held(&in->lock))
		if (c->sk == sk)
			return c;
	return NULL;
}

/*
 * The mark that lets a socket receive events.  The exported netlink API
 * can only unicast to a port id, and the socket holding it is looked up
 * inside netlink_unicast(); what it does with the socket it finds before
 * queueing is sk_filter(), which drops an skb marked pfmemalloc (taken from
 * the memory reserves) unless the socket has SOCK_MEMALLOC.  So event skbs
 * carry that mark, registered sockets, and no others, carry the flag, and
 * whichever socket holds a consumer's port at the moment of the lookup, an
 * event reaches it only if it is registered.  A dropped skb makes
 * netlink_unicast() return as if it had been queued, and the core counts it
 * in LINUX_MIB_PFMEMALLOCDROP.
 *
 * Only the flag is set, not with sk_set_memalloc(), which would also let
 * the socket allocate from the reserves (netlink does not allocate with
 * sk_allocation) and switch on the memalloc receive paths of the whole
 * stack.  On a netlink socket the flag does nothing else: it also accepts
 * pfmemalloc skbs of other kernel senders, which the unit does not have.
 * The skb's mark does nothing else either, but let its clones (an nlmon
 * tap on NETLINK_USERSOCK) be allocated from the reserves.
 *
 * set_bit()/clear_bit() are atomic, so they never lose a flag that others
 * set without a lock (sock_orphan() under sk_callback_lock); the socket
 * lock keeps setsockopt(), which changes sk_flags non-atomically, from
 * losing ours.  Process context.
 */
static void imp2_tag(struct sock *sk)
{
	lock_sock(sk);
	set_bit(SOCK_MEMALLOC, &sk->sk_flags);
	release_sock(sk);
}

static void imp2_untag(struct sock *sk)
{
	lock_sock(sk);
	clear_bit(SOCK_MEMALLOC, &sk->sk_flags);
	release_sock(sk);
}

/*
 * Register @sk, the sender of an IMP2_U_PID, which holds @portid while it
 * sends.  A port id belongs to one socket at a time, so a registration
 * with @portid for another socket is stale: that socket has given the port
 * back and is being released, and its NETLINK_URELEASE is yet to come.  It
 * is removed here, and @sk is marked only after an RCU grace period, once
 * no hook call can still be sending that registration's events, which
 * would now reach @sk.  Process context.
 */
static int imp2_add(struct imp2_net *in, struct sock *sk, u32 portid)
{
	struct imp2_consumer *c, *old, *tmp;
	bool stale = false;
	int err = 0;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	c->portid = portid;
	spin_lock_init(&c->tx_lock);
	atomic64_set(&c->sent, 0);
	atomic64_set(&c->dropped, 0);

	mutex_lock(&in->reg_mutex);
	spin_lock_bh(&in->lock);
	if (imp2_find(in, sk)) {
		/* Already registered: keep its sequence and counters. */
		spin_unlock_bh(&in->lock);
		goto out;
	}
	list_for_each_entry_safe(old, tmp, &in->consumers, node) {
		if (old->portid == portid) {
			imp2_unlink_locked(in, old);
			stale = true;
		}
	}
	/* Only registrations, under reg_mutex, make the count grow. */
	if (in->nconsumers >= READ_ONCE(max_consumers))
		err = -ENOSPC;
	spin_unlock_bh(&in->lock);
	if (err)
		goto out;

	if (stale)
		synchronize_rcu();
	imp2_tag(sk);
	sock_hold(sk);
	c->sk = sk;
	spin_lock_bh(&in->lock);
	c->linked = true;
	list_add_tail_rcu(&c->node, &in->consumers);
	in->nconsumers++;
	spin_unlock_bh(&in->lock);
	c = NULL;
out:
	mutex_unlock(&in->reg_mutex);
	kfree(c);
	return err;
}

/*
 * Unregister @sk.  The mark is cleared after a grace period, when no hook
 * call is sending to @sk any more: an event in flight is still delivered
 * and counted, and none follows the acknowledgement.  Process context.
 */
static int imp2_del(struct imp2_net *in, struct sock *sk)
{
	struct imp2_consumer *c;
	int err = -ENOENT;

	mutex_lock(&in->reg_mutex);
	spin_lock_bh(&in->lock);
	c = imp2_find(in, sk);
	if (c) {
		imp2_unlink_locked(in, c);
		err = 0;
	}
	spin_unlock_bh(&in->lock);
	if (!err) {
		synchronize_rcu();
		imp2_untag(sk);
	}
	mutex_unlock(&in->reg_mutex);
	return err;
}

static void imp2_fill_stats(struct imp2_net *in, const struct sock *sk,
			    struct imp2_stats *st)
{
	struct imp2_consumer *c;

	memset(st, 0, sizeof(*st));
	st->events = atomic64_read(&in->events);
	st->unicast_ok = atomic64_read(&in->unicast_ok);
	st->eagain = atomic64_read(&in->eagain);
	st->econnrefused = atomic64_read(&in->econnrefused);
	st->enomem = atomic64_read(&in->enomem);
	st->other_err = atomic64_read(&in->other_err);
	st->consumers = READ_ONCE(in->nconsumers);

	rcu_read_lock();
	c = imp2_find(in, sk);
	if (c) {
		st->self_registered = 1;
		st->self_sent = atomic64_read(&c->sent);
		st->self_dropped = atomic64_read(&c->dropped);
		st->self_last_seq = READ_ONCE(c->seq);
	}
	rcu_read_unlock();
}

static void imp2_send_stats(struct imp2_net *in, struct sk_buff *in_skb,
			    const struct nlmsghdr *req)
{
	u32 portid = NETLINK_CB(in_skb).portid;
	struct nlmsghdr *nlh;
	struct sk_buff *skb;
	int err;

	skb = nlmsg_new(sizeof(struct imp2_stats), GFP_KERNEL);
	if (!skb) {
		pr_debug("no memory for stats reply to %u\n", portid);
		return;
	}
	nlh = nlmsg_put(skb, portid, req->nlmsg_seq, IMP2_STATS,
			sizeof(struct imp2_stats), 0);
	if (!nlh) {
		kfree_skb(skb);
		return;
	}
	imp2_fill_stats(in, NETLINK_CB(in_skb).sk, nlmsg_data(nlh));
	/* netlink_unicast() consumes the skb on every path. */
	err = netlink_unicast(in->nlsk, skb, portid, MSG_DONTWAIT);
	if (err < 0)
		pr_debug("stats reply to %u failed: %d\n", portid, err);
}

static void imp2_rcv_msg(struct imp2_net *in, struct sk_buff *skb,
			 struct nlmsghdr *nlh)
{
	struct sock *sk = NETLINK_CB(skb).sk;
	u32 portid = NETLINK_CB(skb).portid;
	int err;

	/*
	 * Control messages are a bare header (the original consumer sends
	 * NLMSG_LENGTH(0)); payload bytes after it are ignored, as the
	 * original module ignored them.  nlmsg_pid is never looked at.
	 */
	switch (nlh->nlmsg_type) {
	case IMP2_U_PID:
		if (!READ_ONCE(allow_unprivileged) &&
		    !netlink_net_capable(skb, CAP_NET_ADMIN)) {
			pr_notice_ratelimited("port %u may not register: CAP_NET_ADMIN needed (allow_unprivileged=0)\n",
					      portid);
			err = -EPERM;
		} else {
			err = imp2_add(in, sk, portid);
		}
		break;
	case IMP2_CLOSE:
		err = imp2_del(in, sk);
		break;
	case IMP2_GET_STATS:
		imp2_send_stats(in, skb, nlh);
		return;
	default:
		pr_debug("ignoring message type %u from port %u\n",
			 nlh->nlmsg_type, portid);
		return;
	}

	if (nlh->nlmsg_flags & NLM_F_ACK)
		netlink_ack(skb, nlh, err, NULL);
}

/*
 * Input callback, called in the sender's context.  netlink_rcv_skb() is
 * not usable: it skips types below NLMSG_MIN_TYPE and messages without
 * NLM_F_REQUEST, which are exactly the legacy imp2 messages.
 */
static void imp2_rcv(struct sk_buff *skb)
{
	struct imp2_net *in = imp2_pernet(sock_net(skb->sk));
	struct nlmsghdr *nlh;
	int len = skb->len;

	if (len < NLMSG_HDRLEN) {
		pr_debug("ignoring %d byte message\n", len);
		return;
	}
	for (nlh = nlmsg_hdr(skb); nlmsg_ok(nlh, len);
	     nlh = nlmsg_next(nlh, &len))
		imp2_rcv_msg(in, skb, nlh);
	if (len > 0)
		pr_debug("ignoring %d malformed trailing bytes\n", len);
}

/*
 * Fill the queue extension of @ev, about to be queued as @skb to @c, and
 * note @rmem, the consumer's sk_rmem_alloc before the attempt, for the next
 * event should this attempt fail.  See struct imp2_event.  Caller holds
 * c->tx_lock, so no other event of @c is queued in between.
 */
static void imp2_fill_queue(struct imp2_consumer *c, struct imp2_event *ev,
			    const struct sk_buff *skb, int rmem)
{
	ev->rmem_alloc = rmem + skb->truesize;
	ev->rcvbuf = READ_ONCE(c->sk->sk_rcvbuf);
	ev->truesize = skb->truesize;
	ev->drop_rmem = c->in_gap ? c->gap_rmem : 0;
}

/* Send one event to one consumer.  Runs in softirq (or with BH off). */
static void imp2_send_event(struct imp2_net *in, struct imp2_consumer *c,
			    const struct imp2_event *tmpl)
{
	struct imp2_event *ev = NULL;
	struct nlmsghdr *nlh = NULL;
	struct sk_buff *skb;
	int rmem;
	u32 seq;
	int err;

	skb = nlmsg_new(sizeof(*ev), GFP_ATOMIC);
	if (skb) {
		/* Only a registered socket accepts it: see imp2_tag(). */
		skb->pfmemalloc = 1;
		nlh = nlmsg_put(skb, 0, 0, IMP2_K_MSG, sizeof(*ev), 0);
		if (nlh) {
			ev = nlmsg_data(nlh);
			*ev = *tmpl;
		}
	}

	spin_lock_bh(&c->tx_lock);
	seq = c->seq + 1;
	WRITE_ONCE(c->seq, seq);
	/* As late as may be before netlink_attachskb() compares it. */
	rmem = atomic_read(&c->sk->sk_rmem_alloc);
	if (!skb) {
		err = -ENOMEM;
	} else if (!nlh) {
		kfree_skb(skb);
		err = -EMSGSIZE;
	} else {
		nlh->nlmsg_seq = seq;
		imp2_fill_queue(c, ev, skb, rmem);
		ev->tstamp_ns = ktime_get_ns();
		/* Consumes the skb on every path. */
		err = netlink_unicast(in->nlsk, skb, c->portid, MSG_DONTWAIT);
	}
	if (err >= 0) {
		c->in_gap = false;
	} else if (!c->in_gap) {
		c->in_gap = true;
		c->gap_rmem = rmem;
	}
	spin_unlock_bh(&c->tx_lock);

	if (err >= 0) {
		atomic64_inc(&c->sent);
		atomic64_inc(&in->unicast_ok);
		return;
	}

	atomic64_inc(&c->dropped);
	switch (err) {
	case -EAGAIN:
		atomic64_inc(&in->eagain);
		break;
	case -ENOMEM:
		atomic64_inc(&in->enomem);
		break;
	case -ECONNREFUSED:
		/*
		 * Nobody holds the port, or the socket connect()ed to another
		 * port: stop sending to it.  A live socket keeps its mark,
		 * harmlessly: no other registration can have its port id
		 * (see imp2_add()).
		 */
		atomic64_inc(&in->econnrefused);
		spin_lock_bh(&in->lock);
		imp2_unlink_locked(in, c);
		spin_unlock_bh(&in->lock);
		break;
	default:
		atomic64_inc(&in->other_err);
		break;
	}
}

static unsigned int imp2_hook(void *priv, struct sk_buff *skb,
			      const struct nf_hook_state *state)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct imp2_consumer *c;
	struct imp2_event tmpl;
	struct imp2_net *in;

	if (iph->protocol != IPPROTO_ICMP)
		return NF_ACCEPT;

	in = imp2_pernet(state->net);
	atomic64_inc(&in->events);
	if (list_empty(&in->consumers))
		return NF_ACCEPT;

	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.info.src = iph->saddr;
	tmpl.info.dest = iph->daddr;
	tmpl.ifindex = state->in ? state->in->ifindex : 0;
	tmpl.ip_len = ntohs(iph->tot_len);
	if (!(iph->frag_off & htons(IP_OFFSET))) {
		struct icmphdr _ih;
		const struct icmphdr *ih;

		ih = skb_header_pointer(skb, skb_network_offset(skb) +
					ip_hdrlen(skb), sizeof(_ih), &_ih);
		if (ih) {
			tmpl.icmp_type = ih->type;
			tmpl.icmp_code = ih->code;
			/* Bytes 4-7 of the ICMP header, as on the wire. */
			tmpl.echo_id = ih->un.echo.id;
			tmpl.echo_seq = ih->un.echo.sequence;
			tmpl.flags = IMP2_EVF_ICMP;
		}
	}

#ifdef IMP2_TEST_DELAY_NS
	/*
	 * udelay() and ndelay() spin (no sleep), so they are allowed here in
	 * softirq with the RCU read lock held; they stand for slower
	 * per-event work.  A constant ndelay() beyond 20 us does not link
	 * (__bad_ndelay): the whole microseconds go to udelay().
	 */
	udelay(IMP2_TEST_DELAY_NS / 1000);
	ndelay(IMP2_TEST_DELAY_NS % 1000);
#endif

	/* nf_hook() holds rcu_read_lock() around every hook. */
	list_for_each_entry_rcu(c, &in->consumers, node) {
		/* Released, NETLINK_URELEASE to come: the port is not its. */
		if (sock_flag(c->sk, SOCK_DEAD))
			continue;
		imp2_send_event(in, c, &tmpl);
	}

	return NF_ACCEPT;
}

static const struct nf_hook_ops imp2_nf_ops = {
	.hook		= imp2_hook,
	.pf		= NFPROTO_IPV4,
	.hooknum	= NF_INET_PRE_ROUTING,
	.priority	= NF_IP_PRI_FILTER - 1,
};

static int imp2_proc_show(struct seq_file *m, void *v)
{
	struct imp2_net *in = imp2_pernet(seq_file_single_net(m));
	struct imp2_consumer *c;

	seq_printf(m, "unit %d\n", unit);
	seq_printf(m, "events %lld\n", atomic64_read(&in->events));
	seq_printf(m, "unicast_ok %lld\n", atomic64_read(&in->unicast_ok));
	seq_printf(m, "eagain %lld\n", atomic64_read(&in->eagain));
	seq_printf(m, "econnrefused %lld\n",
		   atomic64_read(&in->econnrefused));
	seq_printf(m, "enomem %lld\n", atomic64_read(&in->enomem));
	seq_printf(m, "other_err %lld\n", atomic64_read(&in->other_err));
	seq_printf(m, "consumers %u\n", READ_ONCE(in->nconsumers));

	rcu_read_lock();
	list_for_each_entry_rcu(c, &in->consumers, node)
		seq_printf(m, "consumer %u sent %lld dropped %lld last_seq %u\n",
			   c->portid, atomic64_read(&c->sent),
			   atomic64_read(&c->dropped), READ_ONCE(c->seq));
	rcu_read_unlock();
	return 0;
}

static int __net_init imp2_net_init(struct net *net)
{
	struct imp2_net *in = imp2_pernet(net);
	struct netlink_kernel_cfg cfg = {
		.input = imp2_rcv,
	};
	int err;

	mutex_init(&in->reg_mutex);
	spin_lock_init(&in->lock);
	INIT_LIST_HEAD(&in->consumers);
	in->nconsumers = 0;
	atomic64_set(&in->events, 0);
	atomic64_set(&in->unicast_ok, 0);
	atomic64_set(&in->eagain, 0);
	atomic64_set(&in->econnrefused, 0);
	atomic64_set(&in->enomem, 0);
	atomic64_set(&in->other_err, 0);

	in->nlsk = netlink_kernel_create(net, unit, &cfg);
	if (!in->nlsk) {
		pr_err("cannot create netlink unit %d (in use?)\n", unit);
		return -ENOMEM;
	}

	if (IS_ENABLED(CONFIG_PROC_FS) &&
	    !proc_create_net_single("imp2", 0444, net->proc_net,
				    imp2_proc_show, NULL)) {
		err = -ENOMEM;
		goto err_sock;
	}

	err = nf_register_net_hook(net, &imp2_nf_ops);
	if (err)
		goto err_proc;
	return 0;

err_proc:
	remove_proc_entry("imp2", net->proc_net);
err_sock:
	netlink_kernel_release(in->nlsk);
	in->nlsk = NULL;
	return err;
}

/*
 * The core runs synchronize_rcu() between pre_exit and exit, so once exit
 * runs no hook call is still using the socket or the consumer list.
 */
static void __net_exit imp2_net_pre_exit(struct net *net)
{
	nf_unregister_net_hook(net, &imp2_nf_ops);
}

static void __net_exit imp2_net_exit(struct net *net)
{
	struct imp2_net *in = imp2_pernet(net);
	struct imp2_consumer *c, *tmp;

	remove_proc_entry("imp2", net->proc_net);
	netlink_kernel_release(in->nlsk);
	in->nlsk = NULL;

	/*
	 * Every consumer's socket is closed by now, and its NETLINK_URELEASE
	 * has normally emptied the list: at unload because user sockets of
	 * the unit pin the module (see imp2_init()), in a namespace being
	 * dismantled because it has no user sockets left.
	 */
	spin_lock_bh(&in->lock);
	list_for_each_entry_safe(c, tmp, &in->consumers, node)
		imp2_unlink_locked(in, c);
	spin_unlock_bh(&in->lock);
}

static struct pernet_operations imp2_net_ops = {
	.init		= imp2_net_init,
	.pre_exit	= imp2_net_pre_exit,
	.exit		= imp2_net_exit,
	.id		= &imp2_net_id,
	.size		= sizeof(struct imp2_net),
};

/*
 * A consumer killed without IMP2_CLOSE: drop it when its socket is
 * released.  netlink_release() calls this after sock_orphan() and gives
 * only the port id, which by now may belong to a new socket with a
 * registration of its own: remove only registrations whose socket is
 * dead.
 */
static int imp2_netlink_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct netlink_notify *n = ptr;
	struct imp2_consumer *c, *tmp;
	struct imp2_net *in;

	if (event != NETLINK_URELEASE || n->protocol != unit || !n->portid)
		return NOTIFY_DONE;
	in = imp2_pernet(n->net);
	spin_lock_bh(&in->lock);
	list_for_each_entry_safe(c, tmp, &in->consumers, node)
		if (c->portid == n->portid && sock_flag(c->sk, SOCK_DEAD))
			imp2_unlink_locked(in, c);
	spin_unlock_bh(&in->lock);
	return NOTIFY_DONE;
}

static struct notifier_block imp2_netlink_nb = {
	.notifier_call = imp2_netlink_event,
};

static int __init imp2_init(void)
{
	int err;

	BUILD_BUG_ON(offsetof(struct imp2_event, rmem_alloc) != IMP2_EVENT_LEN);

	if (unit < 0 || unit >= MAX_LINKS) {
		pr_err("unit %d out of range 0..%d\n", unit, MAX_LINKS - 1);
		return -EINVAL;
	}
	/*
	 * The module's state may go only when no input callback can run,
	 * which the core guarantees on a unit this module registers: each
	 * user socket of it holds a module reference.  Every unit the kernel
	 * itself uses has a kernel socket in the initial namespace, so
	 * loading on it fails in imp2_net_init(), except NETLINK_USERSOCK:
	 * registered at boot with no kernel socket, its user sockets exist
	 * without the module, hold no reference to it and may send to port 0
	 * at any time.  Such a message during rmmod ran imp2_rcv() after the
	 * per-net state was gone; one during insmod can hit the core between
	 * netlink_insert() and NETLINK_F_KERNEL_SOCKET in
	 * __netlink_kernel_create(), where it is queued as to a user socket
	 * and netlink_data_ready() calls BUG().  Refuse it.  (That window of
	 * the core also opens on a registered unit while insmod creates the
	 * kernel sockets of the other namespaces, to a process there that
	 * opened a socket of the unit in the instant before; the module
	 * cannot close it.)
	 */
	if (unit == NETLINK_USERSOCK) {
		pr_err("unit %d (NETLINK_USERSOCK) refused: its sockets do not hold the module, so loading and unloading would race their messages; use a unit no one has registered (default %d)\n",
		       unit, NL_IMP2);
		return -EINVAL;
	}

	err = register_pernet_subsys(&imp2_net_ops);
	if (err)
		return err;

	err = netlink_register_notifier(&imp2_netlink_nb);
	if (err) {
		unregister_pernet_subsys(&imp2_net_ops);
		return err;
	}

	pr_info("version %s loaded, netlink unit %d\n", IMP2_VERSION, unit);
	return 0;
}

static void __exit imp2_exit(void)
{
	/* No notifier call may run once the per-net state is gone. */
	netlink_unregister_notifier(&imp2_netlink_nb);
	unregister_pernet_subsys(&imp2_net_ops);
	/* imp2_consumer_free() is code of this module. */
	rcu_barrier();
}

module_init(imp2_init);
module_exit(imp2_exit);

MODULE_LICENSE("GPL");
MODULE_VERSION(IMP2_VERSION);
MODULE_DESCRIPTION("imp2: IPv4 ICMP events over a custom netlink unit");
