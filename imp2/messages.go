package imp2

import "iter"

// Msg is one netlink message of a datagram (a Message, as Conn receives it,
// may hold several).
type Msg struct {
	Header  Header
	Payload []byte // the bytes after the header up to nlmsg_len; aliases the datagram
}

// Messages iterates over the netlink messages of one datagram, as the
// kernel lays them out (each aligned to 4 bytes, NLMSG_ALIGN), checking
// every nlmsg_len against what is left. Iteration stops after the first
// malformed header, which is yielded with its error and a zero Msg.
// It allocates nothing.
func Messages(b []byte) iter.Seq2[Msg, error] {
	return func(yield func(Msg, error) bool) {
		for len(b) > 0 {
			if !headerFits(b) {
				_, err := headerError(b)
				yield(Msg{}, err)
				return
			}
			n, typ, flags, seq, pid := headerFields(b) // see there
			if !yield(Msg{Header: Header{Len: n, Type: typ, Flags: flags, Seq: seq, PID: pid}, Payload: b[HeaderLen:n]}, nil) {
				return
			}
			next := (int(n) + 3) &^ 3
			if next >= len(b) {
				return
			}
			b = b[next:]
		}
	}
}
