//go:build linux

package icmp

import (
	"testing"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
	inicmp "github.com/imp2/imp2/internal/icmp"
	xicmp "golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

func TestPacketFields(t *testing.T) {
	for i, e := range imp2test.OddEvents() {
		p := specFor(&e, uint64(i))
		b := inicmp.AppendPacket([]byte{0xee}, &p.Packet)[1:]
		h, err := ipv4.ParseHeader(b)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		wantLen := int(e.IPLen)
		if !e.Extended || wantLen < inicmp.MinPacketLen || wantLen > maxPacketLen {
			wantLen = defaultPacketLen
		}
		if h.Version != 4 || h.Len != 20 || h.TotalLen != wantLen || len(b) != wantLen || h.Protocol != 1 ||
			h.TTL != 64 || h.ID != i || h.Src.String() != e.Src.String() || h.Dst.String() != e.Dest.String() {
			t.Errorf("event %d: header %v, %d bytes; want %v>%v total length %d", i, h, len(b), e.Src, e.Dest, wantLen)
		}
		if c := inicmp.Checksum(b[:20]); c != 0 {
			t.Errorf("event %d: IP header checksum does not verify (%#x)", i, c)
		}
		frag := e.Extended && e.Flags&imp2.EventFlagICMP == 0
		if frag {
			if h.FragOff != fragOffset || h.Flags != 0 { // x/net: in 8-byte units
				t.Errorf("event %d: fragment offset %d flags %v, want a non-first fragment at %d", i, h.FragOff, h.Flags, fragOffset)
			}
			continue
		}
		if h.FragOff != 0 || h.Flags != 0 {
			t.Errorf("event %d: fragment fields %d %v", i, h.FragOff, h.Flags)
		}
		m := b[20:]
		if c := inicmp.Checksum(m); c != 0 {
			t.Errorf("event %d: ICMP checksum does not verify (%#x)", i, c)
		}
		if _, err := xicmp.ParseMessage(1, m); err != nil {
			t.Errorf("event %d: x/net/icmp: %v", i, err)
		}
		typ, code, id, seq := m[0], m[1], uint16(m[4])<<8|uint16(m[5]), uint16(m[6])<<8|uint16(m[7])
		want := [4]uint16{uint16(e.ICMPType), uint16(e.ICMPCode), e.ICMPID, e.ICMPSeq}
		if !e.Extended {
			want = [4]uint16{8, 0, legacyID, uint16(i)}
		}
		if got := [4]uint16{uint16(typ), uint16(code), id, seq}; got != want {
			t.Errorf("event %d: type/code/id/seq %v, want %v", i, got, want)
		}
	}
}

func TestCompare(t *testing.T) {
	k := func(n byte) evKey {
		return evKey{src: [4]byte{192, 0, 2, n}, dst: [4]byte{203, 0, 113, 1}, typ: 8, id: 1, seq: uint16(n)}
	}
	exp := func(ns ...byte) []expectedEvent {
		var out []expectedEvent
		for i, n := range ns {
			out = append(out, expectedEvent{key: k(n), full: true, dl: int64(i) * 1000})
		}
		return out
	}
	obs := func(ns ...byte) []observedEvent {
		var out []observedEvent
		for i, n := range ns {
			out = append(out, observedEvent{key: k(n), t: 5000 + int64(i)*1000 + 20})
		}
		return out
	}
	for _, c := range []struct {
		name                              string
		exp                               []expectedEvent
		obs                               []observedEvent
		missing, extra, reordered, tolMax int64
	}{
		{"same", exp(1, 2, 3, 4), obs(1, 2, 3, 4), 0, 0, 0, 0},
		{"missing", exp(1, 2, 3, 4), obs(1, 4), 2, 0, 0, 0},
		{"extra", exp(1, 2), obs(1, 9, 2, 9), 0, 2, 0, 0},
		{"swapped", exp(1, 2, 3, 4), obs(2, 1, 3, 4), 0, 0, 1, 0},
		{"moved", exp(1, 2, 3, 4, 5), obs(2, 3, 4, 5, 1), 0, 0, 1, 0},
		{"duplicates in order", exp(1, 1, 1), obs(1, 1), 1, 0, 0, 0},
		{"tolerated", exp(1, 2, 3), obs(1, 2), 1, 0, 0, 1},
	} {
		rep := &VerifyReport{Tolerance: c.tolMax}
		compare(c.exp, c.obs, 5000, rep)
		if rep.Missing != c.missing || rep.Extra != c.extra || rep.Reordered != c.reordered {
			t.Errorf("%s: missing %d extra %d reordered %d, want %d %d %d", c.name, rep.Missing, rep.Extra, rep.Reordered, c.missing, c.extra, c.reordered)
		}
		if ok := rep.Missing+rep.Extra <= c.tolMax; rep.OK != ok {
			t.Errorf("%s: OK %v", c.name, rep.OK)
		}
		if c.name == "same" && (rep.EventTiming == nil || rep.EventTiming.Max != 20 || rep.EventTiming.P50 != 20) {
			t.Errorf("same: event timing %+v, want 20 ns each", rep.EventTiming)
		}
	}
	// A legacy recording matches on the addresses alone.
	legacy := []expectedEvent{{key: evKey{src: [4]byte{1, 2, 3, 4}, dst: [4]byte{5, 6, 7, 8}}}}
	rep := &VerifyReport{}
	compare(legacy, []observedEvent{{key: evKey{src: [4]byte{1, 2, 3, 4}, dst: [4]byte{5, 6, 7, 8}, typ: 8, id: legacyID}}}, 0, rep)
	if rep.Matched != 1 || !rep.OK {
		t.Errorf("legacy: %+v", rep)
	}
}
