package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/ptytest"
)

// TestProgressBar: with stderr on a terminal, -count shows a bar with the
// frames done and an ETA, cleared before the summary; on a pipe the same
// run prints the summary alone, no bar and no carriage return.
func TestProgressBar(t *testing.T) {
	const n = 3000
	record := func(t *testing.T, stderr func(*exec.Cmd)) {
		p := newProducer(t)
		out := filepath.Join(t.TempDir(), "t.pcapng.zst")
		cmd := exec.Command(recordBin, p.args("-o", out, "-count", fmt.Sprint(n))...)
		stderr(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.waitConsumers(t, 1)
		p.send(t, n/2)
		time.Sleep(1500 * time.Millisecond) // a redraw or more, half way
		p.send(t, n/2)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("imp2-record: %v", err)
		}
	}
	t.Run("terminal", func(t *testing.T) {
		ptm, pts := ptytest.Open(t)
		record(t, func(c *exec.Cmd) { c.Stderr = pts })
		pts.Close()
		got := ptytest.Read(t, ptm)
		bar := regexp.MustCompile(`\r\033\[K\[=*>? *\] +50% 1500/3000 ETA \S+  \d+s elapsed  1500 frames`)
		if !bar.MatchString(got) || !strings.Contains(got, "\r\033[Kimp2-record: ") {
			t.Errorf("terminal shows %q; want the bar at 50%% then the summary on a cleared line", got)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		var stderr bytes.Buffer
		record(t, func(c *exec.Cmd) { c.Stderr = &stderr })
		if s := stderr.String(); strings.ContainsAny(s, "\r\033") || strings.Contains(s, "ETA") || !strings.HasPrefix(s, "imp2-record: ") {
			t.Errorf("stderr on a pipe %q: want the summary alone", s)
		}
	})
}
