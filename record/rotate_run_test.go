package record_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/record"
)

// TestRotationFromGo: a Go program rotates through record.Options (a
// ring of 2 files of 4 KiB); the summary lists the 2 on disk and sums
// those the ring removed, and their frames add up to the recording's.
func TestRotationFromGo(t *testing.T) {
	k, err := imp2test.New(imp2test.Config{AllowUnprivileged: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	dir := t.TempDir()
	o := record.DefaultOptions(filepath.Join(dir, "r.pcapng"))
	o.Family, o.Peer, o.Count = imp2.UserSockFamily, k.PortID(), 3000
	o.FileSize, o.Files, o.Buffer = 4<<10, 2, record.MinBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		if k.WaitConsumers(ctx, 1) != nil {
			return
		}
		for n := uint32(1); n <= 3000; n += 100 {
			evs := make([]imp2.Event, 100)
			for i := range evs {
				evs[i] = imp2test.Event(n + uint32(i))
			}
			k.SendEvents(evs...)
		}
	}()
	s, err := record.Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	frames := s.Removed.Frames
	for _, f := range s.Files {
		frames += f.Frames
		if _, err := os.Stat(f.Path); err != nil {
			t.Errorf("file %+v: %v", f, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(s.Files) != 2 || len(entries) != 2 || s.Removed.Files < 1 || frames != s.Frames || s.Frames != 3000+5 {
		t.Errorf("%d files listed, %d on disk, removed %+v, %d frames in them, %d written; want 2, 2, at least 1 (a file ends after the 64 KiB chunk that passes 4 KiB), 3005 in both",
			len(s.Files), len(entries), s.Removed, frames, s.Frames)
	}
}
