// Package bpfnf is imp2's hook as eBPF: a BPF_PROG_TYPE_NETFILTER program
// (imp2.bpf.c) attached with a netfilter BPF link at IPv4 PRE_ROUTING with
// imp2's priority, writing imp2's extended event and a sequence number per
// ICMP packet into a BPF ring buffer, and the ring's reader
// (github.com/cilium/ebpf/ringbuf). It is the bench's modern peer of the
// module and NFLOG: the same hook, the same event, another way up.
//
// Netfilter BPF links exist from Linux 6.4 on (CONFIG_NETFILTER_BPF_LINK);
// on older kernels Open fails with ErrNoNetfilterLink.
//
// The compiled object (imp2_bpfel.o, embedded by imp2_bpfel.go) is
// committed, so building needs no clang: go generate rebuilds it with
// bpf2go, and TestObjectIsRebuilt checks that the committed object is
// what the source compiles to.
package bpfnf
