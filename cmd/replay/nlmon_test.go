//go:build linux

package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// nlmonPcap writes a classic pcap as tcpdump -i nlmon0 -w writes one: link
// type 253, and in every pseudo-header packet type 4 (PACKET_OUTGOING),
// whichever way the message went (see pcapnl.Direction).
func nlmonPcap(t *testing.T, frames []pcapnl.Frame) string {
	t.Helper()
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint32(b, 262144)
	b = le.AppendUint32(b, pcapnl.LinkTypeNetlink)
	for i, f := range frames {
		n := uint32(pcapnl.PseudoHeaderLen + len(f.Data))
		b = le.AppendUint32(b, 1_700_000_000)
		b = le.AppendUint32(b, uint32(i*10)) // µs
		b = le.AppendUint32(b, n)
		b = le.AppendUint32(b, n)
		b = binary.BigEndian.AppendUint16(b, 4)
		b = binary.BigEndian.AppendUint16(b, pcapnl.ARPHRDNetlink)
		b = append(b, make([]byte, 10)...)
		b = binary.BigEndian.AppendUint16(b, f.Family)
		b = append(b, f.Data...)
	}
	path := filepath.Join(t.TempDir(), "nlmon.pcap")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// An nlmon capture of an imp2 conversation on NETLINK_USERSOCK replays:
// the events and the IMP2_STATS reply (kernel→user by their type) reach
// the consumer byte for byte, in order; the consumer's IMP2_U_PID,
// IMP2_GET_STATS and IMP2_CLOSE, the ack and a NETLINK_ROUTE frame (whose
// direction nothing tells) are skipped.
func TestReplayNlmonCapture(t *testing.T) {
	const port = 4242
	fam := uint16(imp2.UserSockFamily)
	ack := append(imp2.AppendControl(nil, 2, 0x100, 1, port), make([]byte, 20)...) // NLMSG_ERROR, capped
	binary.NativeEndian.PutUint32(ack, uint32(len(ack)))
	frames := []pcapnl.Frame{
		{Family: fam, Data: imp2.AppendControl(nil, imp2.TypeRegister, imp2.FlagRequest|imp2.FlagAck, 1, 0)},
		{Family: fam, Data: ack},
	}
	var want [][]byte
	for i := range 200 {
		frames = append(frames, pcapnl.Frame{Family: fam, Data: eventFrame(uint32(i + 1))})
		want = append(want, eventFrame(uint32(i+1)))
	}
	stats := append(imp2.AppendControl(nil, imp2.TypeStats, 0, 2, port), make([]byte, imp2.StatsLen)...)
	frames = append(frames,
		pcapnl.Frame{Family: 0, Data: imp2.AppendControl(nil, 18, 0x301, 7, 0)}, // RTM_GETLINK dump
		pcapnl.Frame{Family: fam, Data: imp2.AppendControl(nil, imp2.TypeGetStats, imp2.FlagRequest, 2, 0)},
		pcapnl.Frame{Family: fam, Data: stats},
		pcapnl.Frame{Family: fam, Data: imp2.AppendControl(nil, imp2.TypeClose, 0, 3, 0)},
	)
	want = append(want, stats)
	in := nlmonPcap(t, frames)

	p := testPort()
	wait := startReplay(t, "-i", in, "-bind", itoa(p), "-wait", "10s", "-topspeed")
	c := dialWhenUp(t, p, 4<<20)
	got := drain(t, c, len(want), 20*time.Second)
	res := wait()
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	data := make([][]byte, len(got))
	for i := range got {
		data[i] = got[i].data
	}
	sameFrames(t, "frames the consumer got", data, want)
	if res.summary.FramesSent != int64(len(want)) || res.summary.FramesSkipped != 5 {
		t.Errorf("summary: sent %d skipped %d, want %d and 5", res.summary.FramesSent, res.summary.FramesSkipped, len(want))
	}

	// The text output gives each frame the direction its type implies,
	// with the events' addresses, and says "unknown" where nothing tells.
	code, out, errOut := runInProcess("-i", in, "-to", "text")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != len(frames) {
		t.Fatalf("-to text: exit %d, %d lines: %s", code, len(lines), errOut)
	}
	for i, l := range lines {
		dir := "user"
		switch i {
		case 0, len(lines) - 3, len(lines) - 1:
			dir = "kernel"
		case 1, len(lines) - 4:
			dir = "unknown"
		}
		if !strings.Contains(l, " dir "+dir+" ") || (i >= 2 && i < 202) != strings.Contains(l, " src 10.0.") {
			t.Errorf("line %d: %q, want dir %s, src and dest for events only", i, l, dir)
		}
	}
}
