package pcapnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	"github.com/imp2/imp2/imp2"
)

// ErrNotEvent is returned by Frame.Event for frames that are not imp2
// kernel events.
var ErrNotEvent = errors.New("pcapnl: not an imp2 event")

// Header decodes the netlink header of the first message in the frame.
func (f *Frame) Header() (imp2.Header, error) {
	return imp2.ParseHeader(f.Data)
}

// Messages iterates over the netlink messages of the frame (nlmon captures
// may batch several in one frame); see imp2.Messages.
func (f *Frame) Messages() iter.Seq2[Message, error] { return imp2.Messages(f.Data) }

// Message is one netlink message inside a frame; its Payload aliases
// Frame.Data.
type Message = imp2.Msg

// IsIMP2 reports whether the frame belongs to the imp2 protocol on the given
// netlink family (imp2.DefaultFamily = 31 unless the module was loaded with
// another unit). The family decides: imp2 message types 0–4 collide with the
// standard netlink control types (NLMSG_NOOP = 1, NLMSG_ERROR = 2, ...), so
// a frame of another family is never taken for imp2.
func (f *Frame) IsIMP2(family uint16) bool { return f.Family == family }

// IMP2Direction returns the direction the imp2 protocol gives a frame, from
// the type of its first message: IMP2_K_MSG and IMP2_STATS travel
// kernel→user, IMP2_U_PID, IMP2_GET_STATS and IMP2_CLOSE user→kernel. Type
// 2 is also NLMSG_ERROR, the kernel's ack, so it counts as IMP2_CLOSE only
// as the bare header every consumer sends (an ack carries at least its
// error code). Any other frame, or a malformed header, is DirUnknown. Call
// it only for frames of an imp2 family: the types collide with other
// protocols' (NLMSG_NOOP = 1, NLMSG_ERROR = 2, ...). A header whose
// nlmsg_len runs past a frame cut at the snap length still counts. It
// allocates nothing.
func IMP2Direction(data []byte) Direction {
	if len(data) < imp2.HeaderLen {
		return DirUnknown
	}
	h := imp2.Header{Len: binary.NativeEndian.Uint32(data), Type: binary.NativeEndian.Uint16(data[4:])}
	if h.Len < imp2.HeaderLen {
		return DirUnknown
	}
	switch h.Type {
	case imp2.TypeEvent, imp2.TypeStats:
		return ToUser
	case imp2.TypeRegister, imp2.TypeGetStats:
		return ToKernel
	case imp2.TypeClose:
		if h.Len == imp2.HeaderLen {
			return ToKernel
		}
	}
	return DirUnknown
}

// Event decodes the frame as an imp2 kernel event (IMP2_K_MSG) on the
// default family 31; see EventOn.
func (f *Frame) Event() (imp2.Event, error) { return f.EventOn(imp2.DefaultFamily) }

// EventOn decodes the frame as an imp2 kernel event on the given netlink
// family: the frame's family must match, its first message must be
// IMP2_K_MSG and the frame must not be known to travel user→kernel
// (ToKernel; an IMP2_K_MSG of unknown direction decodes). Both
// payload forms decode: the legacy 8-byte packet_info and the 32-byte
// extended event (Event.Extended tells which). The payload is bounded by
// nlmsg_len, not by the frame, so trailing messages are not mistaken for
// extension bytes. Frames of another family or type return an error
// wrapping ErrNotEvent.
func (f *Frame) EventOn(family uint16) (imp2.Event, error) {
	if f.Family != family {
		return imp2.Event{}, fmt.Errorf("%w: netlink family %d, want %d", ErrNotEvent, f.Family, family)
	}
	if f.Direction == ToKernel {
		return imp2.Event{}, fmt.Errorf("%w: user→kernel frame", ErrNotEvent)
	}
	h, err := imp2.ParseHeader(f.Data)
	if err != nil {
		return imp2.Event{}, err
	}
	if h.Type != imp2.TypeEvent {
		return imp2.Event{}, fmt.Errorf("%w: message type %d", ErrNotEvent, h.Type)
	}
	return imp2.ParseEvent(f.Data[imp2.HeaderLen:h.Len])
}
