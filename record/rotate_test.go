package record

import (
	"strings"
	"testing"
	"time"
)

func TestFileNames(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.Local)
	for _, c := range []struct {
		path     string
		size     Size
		interval time.Duration
		n        int
		want     string
	}{
		{"t.pcapng.zst", 1 << 20, 0, 0, "t.000000.pcapng.zst"},
		{"dir/t.pcap", 1 << 20, 0, 12, "dir/t.000012.pcap"},
		{"t.gz", 1 << 20, 0, 1234567, "t.1234567.gz"},
		{"trace", 0, time.Minute, 3, "trace.000003"},
		{"t-%Y%m%d-%H%M%S.pcapng", 0, time.Second, 5, "t-20260304-050607.pcapng"},
		{"t-%F_%T-%j-%y-%e-%%.pcapng", 0, time.Second, 0, "t-2026-03-04_05:06:07-063-26- 4-%.pcapng"},
		{"t-%H.pcapng.zst", 1 << 20, time.Hour, 2, "t-05.000002.pcapng.zst"},
		{"plain.pcapng", 0, 0, 9, "plain.pcapng"},
	} {
		o := Options{Path: c.path, FileSize: c.size, FileInterval: c.interval}
		if got := o.fileName(c.n, at); got != c.want {
			t.Errorf("%q -C %d -G %v file %d: %q, want %q", c.path, c.size, c.interval, c.n, got, c.want)
		}
	}
}

func TestRotationOptions(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string // in the error; "" for none
	}{
		{Options{Path: "t-%H%M.pcapng", FileInterval: time.Minute}, ""},
		{Options{Path: "t-%H.pcapng", FileInterval: 30 * time.Minute}, "names would repeat"},
		{Options{Path: "t-%H.pcapng", FileInterval: 30 * time.Minute, FileSize: 1 << 20}, ""},
		{Options{Path: "t-%q.pcapng", FileInterval: time.Second}, "Path t-%q.pcapng: unknown conversion %q"},
		{Options{Path: "t-%", FileSize: MinFileSize}, "lone %"},
		{Options{Path: "t", FileSize: 100}, "not tcpdump's millions of bytes (tcpdump's -C 100 is 100000000 bytes, about 95M: K and M are powers of 1024)"},
		{Options{Path: "t", FileSize: 1000}, "(tcpdump's -C 1000 is 1000000000 bytes, about 954M: "},
		{Options{Path: "t", FileSize: 1}, "(tcpdump's -C 1 is 1000000 bytes, about 977K: "},
		{Options{Path: "t.pcapng", Files: 3}, "Files 3: a ring of files needs rotation"},
		{Options{Path: "-", FileSize: 1 << 20}, "rotation makes files"},
		{Options{Path: "t", FileSize: -1}, "FileSize"},
	} {
		err := c.o.validateRotation()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

// TestFilesText: the text summary of a rotated set names the ring's
// removals only when there is a ring that removed files.
func TestFilesText(t *testing.T) {
	files := []File{{"t.000000.pcapng", 10, 100}, {"t.000001.pcapng", 5, 60}}
	for _, c := range []struct {
		removed *Removed
		want    string
	}{
		{nil, "  files     2 on disk\n            t.000000.pcapng"},
		{&Removed{3, 30, 300}, "  files     2 on disk; 3 removed by the ring (30 frames, 300 bytes)\n"},
	} {
		var b strings.Builder
		s := &Summary{Output: "t.pcapng", Files: files, Removed: c.removed}
		if err := s.WriteText(&b); err != nil || !strings.Contains(b.String(), c.want) || c.removed == nil && strings.Contains(b.String(), "ring") {
			t.Errorf("removed %+v: %v\n%s\nwant %q", c.removed, err, b.String(), c.want)
		}
	}
}
