//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/*
 * imp2's hook as a BPF netfilter program: at IPv4 PRE_ROUTING, with imp2's
 * priority (the Go loader attaches it), every ICMP packet becomes one
 * record in a BPF ring buffer, holding imp2's extended event (the same
 * struct imp2_event, kmod/imp2_uapi.h) and a sequence number.
 *
 * Sequence numbers count every ICMP packet the program handles, 1, 2, 3,
 * ..., whether its record was reserved or not, so a gap is a failed
 * reservation, and every failure is also counted in reserve_failed.  A
 * number is taken after the reservation: the ring orders records by
 * reservation, so a reader that empties the ring before handing a batch
 * on can sort the batch and see the numbers in order (see the Go reader).
 *
 * The netfilter program reads the packet with bpf_probe_read_kernel from
 * the skb's linear part: ip_rcv has pulled the IP header into it; an ICMP
 * header outside it (a paged skb, never one from the bench's veth) leaves
 * the icmp_* fields unset, as imp2 does for a non-first fragment.  The tc
 * program (imp2_tc, below) is the fallback for kernels before 6.4.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../../kmod/imp2_uapi.h"

#define NF_ACCEPT	1
#define TC_ACT_OK	0
#define ETH_P_IP	0x0800
#define ETH_HLEN	14
#define IPPROTO_ICMP	1
#define IP_OFFSET	0x1fff

/* The fields used, relocated against the running kernel's BTF (CO-RE). */
struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

struct nf_hook_state {
	struct net_device *in;
} __attribute__((preserve_access_index));

struct sk_buff {
	unsigned int len;
	unsigned int data_len;
	__u16 network_header;
	unsigned char *head;
	unsigned char *data;
} __attribute__((preserve_access_index));

/* The program's context: struct bpf_nf_ctx of include/net/netfilter/nf_bpf_link.h. */
struct bpf_nf_ctx {
	const struct nf_hook_state *state;
	struct sk_buff *skb;
};

struct iphdr_min {
	__u8	ihl_version;
	__u8	tos;
	__be16	tot_len;
	__be16	id;
	__be16	frag_off;
	__u8	ttl;
	__u8	protocol;
	__u16	check;
	__be32	saddr;
	__be32	daddr;
};

struct icmphdr_min {
	__u8	type;
	__u8	code;
	__u16	checksum;
	__be16	id;
	__be16	sequence;
};

/* One ring record: 56 bytes, 64 in the ring with its 8-byte header. */
struct imp2_bpf_event {
	struct imp2_event ev;
	__u32	seq;		/* 48: 1, 2, 3, ... per ICMP packet handled */
	__u32	reserved;	/* 52: zero */
};

#define RING_RECORD_BYTES	(sizeof(struct imp2_bpf_event) + 8)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);	/* the loader sets the size */
} events SEC(".maps");

/* Read by the loader through the mmap of .bss, without a syscall. */
__u64 handled;		/* ICMP packets handled: the last sequence number */
__u64 reserve_failed;	/* of those, records the full ring had no room for */
/* The ring's occupancy at the first failure of a gap, for the next record. */
__u64 gap_rmem;

static __always_inline int ntohs16(__be16 v)
{
	return __builtin_bswap16(v);
}

/*
 * emit writes one packet's record, or counts its failed reservation.  ih
 * is NULL when the ICMP header could not be read (a non-first fragment).
 * The sequence number is taken after the reservation (see the top).
 *
 * The queue extension is the ring's, in imp2's terms: rmem_alloc the
 * ring's occupancy (producer less consumer position) right after this
 * record's reservation, so with it (and with any record another CPU
 * reserved meanwhile); rcvbuf the ring's size; truesize what the record
 * takes of it; drop_rmem the occupancy at the first failed reservation
 * since the last record (0 without one).
 */
static __always_inline void emit(const struct iphdr_min *iph,
				 const struct icmphdr_min *ih, int ifindex)
{
	struct imp2_bpf_event *rec;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&handled, 1);
		__sync_fetch_and_add(&reserve_failed, 1);
		__sync_val_compare_and_swap(&gap_rmem, 0,
					    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA));
		return;
	}
	rec->seq = __sync_fetch_and_add(&handled, 1) + 1;
	rec->reserved = 0;
	__builtin_memset(&rec->ev, 0, sizeof(rec->ev));
	rec->ev.info.src = iph->saddr;
	rec->ev.info.dest = iph->daddr;
	rec->ev.ifindex = ifindex;
	rec->ev.ip_len = ntohs16(iph->tot_len);
	rec->ev.rmem_alloc = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	rec->ev.rcvbuf = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	rec->ev.truesize = RING_RECORD_BYTES;
	rec->ev.drop_rmem = __sync_lock_test_and_set(&gap_rmem, 0);
	if (ih) {
		rec->ev.icmp_type = ih->type;
		rec->ev.icmp_code = ih->code;
		rec->ev.echo_id = ih->id;
		rec->ev.echo_seq = ih->sequence;
		rec->ev.flags = IMP2_EVF_ICMP;
	}
	/* imp2 stamps its event right before netlink_unicast(). */
	rec->ev.tstamp_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline int first_fragment(const struct iphdr_min *iph)
{
	return !(iph->frag_off & __builtin_bswap16(IP_OFFSET));
}

/* imp2's hook: IPv4 PRE_ROUTING, through a netfilter BPF link. */
SEC("netfilter")
int imp2_hook(struct bpf_nf_ctx *ctx)
{
	const struct net_device *in = ctx->state->in;
	struct sk_buff *skb = ctx->skb;
	unsigned long nh, linear_end;
	struct icmphdr_min ih;
	struct iphdr_min iph;
	unsigned int ihl;
	int have_ih;

	nh = (unsigned long)skb->head + skb->network_header;
	linear_end = (unsigned long)skb->data + (skb->len - skb->data_len);
	if (bpf_probe_read_kernel(&iph, sizeof(iph), (void *)nh))
		return NF_ACCEPT;
	if (iph.protocol != IPPROTO_ICMP)
		return NF_ACCEPT;
	ihl = (iph.ihl_version & 0x0f) * 4;
	have_ih = first_fragment(&iph) && nh + ihl + sizeof(ih) <= linear_end &&
		  !bpf_probe_read_kernel(&ih, sizeof(ih), (void *)(nh + ihl));
	emit(&iph, have_ih ? &ih : NULL, in ? in->ifindex : 0);
	return NF_ACCEPT;
}

/*
 * The same event from tc ingress, for kernels without netfilter BPF links
 * (before 6.4): another hook point, before the IP layer (no defragment,
 * no checksum or header validation), so results say so.
 */
SEC("tc")
int imp2_tc(struct __sk_buff *skb)
{
	struct icmphdr_min ih;
	struct iphdr_min iph;
	unsigned int ihl;
	int have_ih;

	if (skb->protocol != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)))
		return TC_ACT_OK;
	if (iph.protocol != IPPROTO_ICMP)
		return TC_ACT_OK;
	ihl = (iph.ihl_version & 0x0f) * 4;
	have_ih = first_fragment(&iph) &&
		  !bpf_skb_load_bytes(skb, ETH_HLEN + ihl, &ih, sizeof(ih));
	emit(&iph, have_ih ? &ih : NULL, skb->ingress_ifindex);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
