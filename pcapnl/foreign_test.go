package pcapnl

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// foreignBlocks returns an interface description block of link type 1
// (Ethernet) with an if_name, and a statistics block for it as interface
// id, both little-endian.
func foreignBlocks(id uint32) []byte {
	var b []byte
	name := []byte("eth0\x00\x00\x00\x00")
	b = le.AppendUint32(b, blockIDB)
	b = le.AppendUint32(b, uint32(20+4+len(name)+4))
	b = le.AppendUint16(b, 1) // LINKTYPE_ETHERNET
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 2|4<<16) // if_name, 4 bytes
	b = append(b, name...)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, uint32(20+4+len(name)+4))
	b = le.AppendUint32(b, blockISB)
	b = le.AppendUint32(b, 32)
	b = le.AppendUint32(b, id)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 32)
	return b
}

// blockOffsets returns the offset of every block of a little-endian
// pcapng file.
func blockOffsets(b []byte) []int {
	var offs []int
	for o := 0; o < len(b); o += int(le.Uint32(b[o+4:])) {
		offs = append(offs, o)
	}
	return offs
}

// TestForeignInterface puts an Ethernet interface with no packets in the
// middle of a netlink capture, as a multi-interface dumpcap capture has
// them: every frame is read (tshark reads them too). A packet on that
// interface fails, naming the interface and its offset, after every frame
// before it.
func TestForeignInterface(t *testing.T) {
	frames := floodTrace(8, 12) // 10 frames
	data := writeTrace(t, frames, WriterOptions{Compression: None})
	offs := blockOffsets(data) // SHB, IDB, 10 EPB, ISB
	mid := offs[2+5]
	file := append(append(bytes.Clone(data[:mid]), foreignBlocks(1)...), data[mid:]...)
	got, rd, err := readAll(t, bytes.NewReader(file))
	if err != nil || len(got) != len(frames) {
		t.Fatalf("%d of %d frames, error %v", len(got), len(frames), err)
	}
	for i := range got {
		sameFrame(t, i, got[i], frames[i])
	}
	if ifs := rd.Interfaces(); len(ifs) != 2 || ifs[1].LinkType != 1 || ifs[0].Name != DefaultInterface {
		t.Errorf("interfaces %+v", ifs)
	}
	if st := rd.Stats(); len(st) != 1 || st[0].Interface != 0 {
		t.Errorf("statistics %+v; want only interface 0's", st)
	}
	if _, err := exec.LookPath("tshark"); err == nil {
		path := filepath.Join(t.TempDir(), "two.pcapng")
		os.WriteFile(path, file, 0o644)
		if rows := tsharkFields(t, path, nil, "frame.interface_id"); len(rows) != len(frames) {
			t.Errorf("tshark reads %d frames, want %d", len(rows), len(frames))
		}
	}

	// A packet on the foreign interface: its EPB is a netlink one with the
	// interface id changed.
	seven := offs[2+7]
	bad := bytes.Clone(file)
	at := seven + len(foreignBlocks(1))
	le.PutUint32(bad[at+8:], 1)
	got, _, err = readAll(t, bytes.NewReader(bad))
	var pe *Error
	if len(got) != 7 || !errors.Is(err, ErrLinkType) || !errors.As(err, &pe) || pe.Offset != int64(at) ||
		!strings.Contains(err.Error(), "interface 1") || !strings.Contains(err.Error(), "link type 1") {
		t.Fatalf("%d frames, error %v; want 7 frames, then ErrLinkType naming interface 1, link type 1, offset %d", len(got), err, at)
	}
}
