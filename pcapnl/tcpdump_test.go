package pcapnl_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/pcapnl"
)

// TestTcpdumpReadsPcap: tcpdump -r reads a .pcap that Create wrote, every
// packet at its nanosecond timestamp.
func TestTcpdumpReadsPcap(t *testing.T) {
	frames := imp2test.Events(1, 300)
	path := filepath.Join(t.TempDir(), "events.pcap")
	w, err := pcapnl.Create(path, pcapnl.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		w.WriteFrame(&frames[i])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stamps := imp2test.Tcpdump(t, path)
	if stamps == nil {
		return
	}
	if len(stamps) != len(frames) {
		t.Fatalf("tcpdump shows %d packets, want %d", len(stamps), len(frames))
	}
	for i, s := range stamps {
		if want := fmt.Sprintf("%d.%09d", frames[i].Time/1e9, frames[i].Time%1e9); s != want {
			t.Fatalf("tcpdump packet %d at %s, want %s", i+1, s, want)
		}
	}
}
