package progress

import (
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/ptytest"
)

// TestTerminal: on a pseudo-terminal the bar is drawn in place and
// cleared at the end.
func TestTerminal(t *testing.T) {
	ptm, pts := ptytest.Open(t)
	b := New(pts, false)
	if b == nil {
		t.Fatal("New on a pty returned nil")
	}
	stop := b.Follow(5*time.Millisecond, func() (Status, bool) { return Status{Done: 1, Total: 4, Count: true, Detail: "d"}, true })
	time.Sleep(50 * time.Millisecond)
	stop()
	pts.Close()
	out := ptytest.Read(t, ptm)
	if !strings.Contains(out, "\r\033[K[") || !strings.Contains(out, " 25% 1/4 ETA ") || !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("terminal output %q: want the bar redrawn in place, then cleared", out)
	}
}
