package bpfnf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rtnetlink's traffic-control constants (linux/pkt_sched.h,
// linux/rtnetlink.h); x/sys/unix has the message types only.
const (
	tcHClsact       = 0xFFFFFFF1 // TC_H_CLSACT
	tcHClsactHandle = 0xFFFF0000 // the clsact qdisc's handle, ffff:
	tcHMinIngress   = 0xFFF2     // TC_H_MIN_INGRESS
	tcaKind         = 1          // TCA_KIND
	tcaOptions      = 2          // TCA_OPTIONS
	tcaBPFFD        = 6          // TCA_BPF_FD
	tcaBPFName      = 7          // TCA_BPF_NAME
	tcaBPFFlags     = 8          // TCA_BPF_FLAGS
	tcaBPFActDirect = 1          // TCA_BPF_FLAG_ACT_DIRECT
	ethPAll         = 0x0003     // ETH_P_ALL
)

// tcPrio gives each attachment its own filter priority, so that closing
// one consumer removes its filter and no other.
var tcPrio atomic.Uint32

// tcFilter is a cls_bpf filter in direct-action mode on an interface's
// clsact ingress, attached over rtnetlink: on kernels before 6.6 (tcx)
// there is no BPF link for tc, and before 6.4 none for netfilter.
type tcFilter struct {
	nl      *netlink.Conn
	ifindex int32
	prio    uint32
}

// attachTCIngress attaches prog at ifname's ingress in the calling
// thread's network namespace, adding the clsact qdisc if it is missing.
func attachTCIngress(prog *ebpf.Program, ifname string) (*tcFilter, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("bpfnf: tc ingress: %w", err)
	}
	nl, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, fmt.Errorf("bpfnf: tc ingress: rtnetlink: %w", err)
	}
	f := &tcFilter{nl: nl, ifindex: int32(ifc.Index), prio: tcPrio.Add(1)&0x7fff + 1}
	ae := netlink.NewAttributeEncoder()
	ae.String(tcaKind, "clsact")
	if err := f.do(unix.RTM_NEWQDISC, netlink.Create|netlink.Excl, tcHClsactHandle, tcHClsact, 0, ae); err != nil && !errors.Is(err, unix.EEXIST) {
		nl.Close()
		return nil, fmt.Errorf("bpfnf: adding a clsact qdisc to %s (module sch_ingress): %w", ifname, err)
	}
	ae = netlink.NewAttributeEncoder()
	ae.String(tcaKind, "bpf")
	ae.Nested(tcaOptions, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(tcaBPFFD, uint32(prog.FD()))
		nae.String(tcaBPFName, "imp2_tc")
		nae.Uint32(tcaBPFFlags, tcaBPFActDirect)
		return nil
	})
	if err := f.do(unix.RTM_NEWTFILTER, netlink.Create|netlink.Excl, 0, tcHClsact&0xFFFF0000|tcHMinIngress, f.info(), ae); err != nil {
		nl.Close()
		return nil, fmt.Errorf("bpfnf: adding a bpf filter to %s's ingress (module cls_bpf): %w", ifname, err)
	}
	return f, nil
}

// info is the filter's tcm_info: its priority and protocol (ETH_P_ALL, in
// network byte order).
func (f *tcFilter) info() uint32 { return f.prio<<16 | uint32(ethPAll<<8) }

// do sends one traffic-control request and waits for its acknowledgement.
func (f *tcFilter) do(typ uint16, flags netlink.HeaderFlags, handle, parent, info uint32, ae *netlink.AttributeEncoder) error {
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	// struct tcmsg: family, 3 bytes of padding, ifindex, handle, parent, info.
	msg := make([]byte, 20, 20+len(attrs))
	binary.NativeEndian.PutUint32(msg[4:], uint32(f.ifindex))
	binary.NativeEndian.PutUint32(msg[8:], handle)
	binary.NativeEndian.PutUint32(msg[12:], parent)
	binary.NativeEndian.PutUint32(msg[16:], info)
	_, err = f.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | netlink.Acknowledge | flags},
		Data:   append(msg, attrs...),
	})
	return err
}

// Close removes the filter (the qdisc stays: other consumers' filters may
// hang on it, and it goes with the namespace).
func (f *tcFilter) Close() error {
	err := f.do(unix.RTM_DELTFILTER, 0, 0, tcHClsact&0xFFFF0000|tcHMinIngress, f.info(), netlink.NewAttributeEncoder())
	return errors.Join(err, f.nl.Close())
}
