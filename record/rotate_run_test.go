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
// ring of 2 files of 4 KiB); the summary lists every file, the ring's
// removed ones marked, and their frames add up to the recording's.
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
	var frames uint64
	removed := 0
	for _, f := range s.Files {
		frames += f.Frames
		_, serr := os.Stat(f.Path)
		if f.Removed != (serr != nil) {
			t.Errorf("file %+v: on disk: %v", f, serr)
		}
		if f.Removed {
			removed++
		}
	}
	if len(s.Files) < 3 || removed != len(s.Files)-2 || frames != s.Frames || s.Frames != 3000+5 {
		t.Errorf("%d files, %d removed, %d frames in them, %d written; want at least 3 (a file ends after the 64 KiB chunk that passes 4 KiB), all but 2 removed, 3005 in both", len(s.Files), removed, frames, s.Frames)
	}
}
