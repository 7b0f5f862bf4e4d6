package progress

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

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

// TestTerminalWidth: on a terminal narrower than the line the bar is cut
// to the width less one, so that it never wraps (a wrapped line is not
// redrawn in place).
func TestTerminalWidth(t *testing.T) {
	ptm, pts := ptytest.Open(t)
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 40}); err != nil {
		t.Skipf("TIOCSWINSZ: %v", err)
	}
	b := New(pts, false)
	b.Draw(Status{Done: 1, Total: 4, Count: true, Detail: strings.Repeat("detail → ", 10)})
	b.Clear()
	pts.Close()
	out := ptytest.Read(t, ptm)
	for _, line := range strings.Split(out, "\r\033[K") {
		if n := utf8.RuneCountInString(line); n > 39 {
			t.Errorf("a line of %d characters on a 40-column terminal: %q", n, line)
		}
	}
	if !strings.Contains(out, "[======>                 ]  25% 1/4 ETA") {
		t.Errorf("terminal output %q: want the bar", out)
	}
}
