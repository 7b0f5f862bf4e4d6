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
 * Locking:
 *  - imp2_net.lock (BH-safe spinlock) serialises changes to the consumer
 *    list; the hook walks the list under RCU (nf_hook holds rcu_read_lock)
 *    and entries are freed with kfree_rcu().
 *  - imp2_consumer.tx_lock makes "take the next sequence number" and
 *    "queue the skb on the consumer's socket" one step, so a consumer's
 *    queue is always in nlmsg_seq order even when the hook runs on several
 *    CPUs at once: a gap in nlmsg_seq is always a dropped event, never a
 *    reordering.
 *  - Counters are atomic64_t and read without locks.
 *
 * Permissions: registering (IMP2_U_PID) needs CAP_NET_ADMIN in the user
 * namespace owning the network namespace, like nflog or nlmon: a consumer
 * sees addresses of all ICMP traffic of the namespace.  The module
 * parameter allow_unprivileged=1 lifts that (the original module had no
 * check).  IMP2_CLOSE only ever removes the sender itself, and
 * IMP2_GET_STATS only returns counters that /proc/net/imp2 shows to
 * everyone, so neither needs a capability.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/icmp.h>
#include <linux/ip.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
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

#define IMP2_VERSION "2.0.0"

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
	u32 portid;			/* kernel-verified port of the socket */
	bool linked;			/* on the list; under imp2_net.lock */
	spinlock_t tx_lock;		/* orders seq and enqueue */
	u32 seq;			/* last nlmsg_seq used; under tx_lock */
	atomic64_t sent;
	atomic64_t dropped;
};

struct imp2_net {
	struct sock *nlsk;
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

/* Caller holds in->lock. */
static void imp2_unlink_locked(struct imp2_net *in, struct imp2_consumer *c)
{
	if (!c->linked)
		return;
	c->linked = false;
	list_del_rcu(&c->node);
	in->nconsumers--;
	kfree_rcu(c, rcu);
}

/* Caller holds in->lock or rcu_read_lock(). */
static struct imp2_consumer *imp2_find(struct imp2_net *in, u32 portid)
{
	struct imp2_consumer *c;

	list_for_each_entry_rcu(c, &in->consumers, node,
				lockdep_is_held(&in->lock))
		if (c->portid == portid)
			return c;
	return NULL;
}

static int imp2_add(struct imp2_net *in, u32 portid)
{
	struct imp2_consumer *c;
	int err = 0;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	c->portid = portid;
	spin_lock_init(&c->tx_lock);
	atomic64_set(&c->sent, 0);
	atomic64_set(&c->dropped, 0);

	spin_lock_bh(&in->lock);
	if (imp2_find(in, portid)) {
		/* Already registered: keep its sequence and counters. */
		spin_unlock_bh(&in->lock);
		kfree(c);
		return 0;
	}
	if (in->nconsumers >= READ_ONCE(max_consumers)) {
		err = -ENOSPC;
	} else {
		c->linked = true;
		list_add_tail_rcu(&c->node, &in->consumers);
		in->nconsumers++;
		c = NULL;
	}
	spin_unlock_bh(&in->lock);
	kfree(c);
	return err;
}

static int imp2_del(struct imp2_net *in, u32 portid)
{
	struct imp2_consumer *c;
	int err = -ENOENT;

	spin_lock_bh(&in->lock);
	c = imp2_find(in, portid);
	if (c) {
		imp2_unlink_locked(in, c);
		err = 0;
	}
	spin_unlock_bh(&in->lock);
	return err;
}

static void imp2_fill_stats(struct imp2_net *in, u32 portid,
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
	c = imp2_find(in, portid);
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
	imp2_fill_stats(in, portid, nlmsg_data(nlh));
	/* netlink_unicast() consumes the skb on every path. */
	err = netlink_unicast(in->nlsk, skb, portid, MSG_DONTWAIT);
	if (err < 0)
		pr_debug("stats reply to %u failed: %d\n", portid, err);
}

static void imp2_rcv_msg(struct imp2_net *in, struct sk_buff *skb,
			 struct nlmsghdr *nlh)
{
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
			err = imp2_add(in, portid);
		}
		break;
	case IMP2_CLOSE:
		err = imp2_del(in, portid);
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

/* Send one event to one consumer.  Runs in softirq (or with BH off). */
static void imp2_send_event(struct imp2_net *in, struct imp2_consumer *c,
			    const struct imp2_event *tmpl)
{
	struct imp2_event *ev = NULL;
	struct nlmsghdr *nlh = NULL;
	struct sk_buff *skb;
	u32 seq;
	int err;

	skb = nlmsg_new(sizeof(*ev), GFP_ATOMIC);
	if (skb) {
		nlh = nlmsg_put(skb, 0, 0, IMP2_K_MSG, sizeof(*ev), 0);
		if (nlh) {
			ev = nlmsg_data(nlh);
			*ev = *tmpl;
		}
	}

	spin_lock_bh(&c->tx_lock);
	seq = c->seq + 1;
	WRITE_ONCE(c->seq, seq);
	if (!skb) {
		err = -ENOMEM;
	} else if (!nlh) {
		kfree_skb(skb);
		err = -EMSGSIZE;
	} else {
		nlh->nlmsg_seq = seq;
		ev->tstamp_ns = ktime_get_ns();
		/* Consumes the skb on every path. */
		err = netlink_unicast(in->nlsk, skb, c->portid, MSG_DONTWAIT);
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
		/* The socket is gone: stop sending to it. */
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

	/* nf_hook() holds rcu_read_lock() around every hook. */
	list_for_each_entry_rcu(c, &in->consumers, node)
		imp2_send_event(in, c, &tmpl);

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
 * released, before a later socket can reuse the port id.  Called from
 * netlink_release() through a notifier chain; must not sleep.
 */
static int imp2_netlink_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct netlink_notify *n = ptr;

	if (event != NETLINK_URELEASE || n->protocol != unit || !n->portid)
		return NOTIFY_DONE;
	imp2_del(imp2_pernet(n->net), n->portid);
	return NOTIFY_DONE;
}

static struct notifier_block imp2_netlink_nb = {
	.notifier_call = imp2_netlink_event,
};

static int __init imp2_init(void)
{
	int err;

	if (unit < 0 || unit >= MAX_LINKS) {
		pr_err("unit %d out of range 0..%d\n", unit, MAX_LINKS - 1);
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
}

module_init(imp2_init);
module_exit(imp2_exit);

MODULE_LICENSE("GPL");
MODULE_VERSION(IMP2_VERSION);
MODULE_DESCRIPTION("imp2: IPv4 ICMP events over a custom netlink unit");
