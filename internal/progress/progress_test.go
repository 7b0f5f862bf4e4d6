package progress

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	for _, c := range []struct {
		s       Status
		elapsed time.Duration
		want    string
	}{
		{Status{Done: 9, Total: 36, Count: true, Detail: "16000 pps rep 2"}, 30 * time.Second,
			"[====>           ]  25% 9/36 ETA 1m30s  16000 pps rep 2"},
		{Status{Done: 30, Total: 60}, 30 * time.Second, "[========>       ]  50% 30s/1m00s ETA 30s"},
		{Status{Done: 0, Total: 10, Count: true}, time.Second, "[>               ]   0% 0/10 ETA ?"},
		{Status{Done: 12, Total: 10, Count: true}, time.Hour, "[================] 100% 12/10 ETA 0s"},
		{Status{Detail: "3s  100 frames"}, 3 * time.Second, "3s  100 frames"},
	} {
		if got := Render(c.s, c.elapsed, 16); got != c.want {
			t.Errorf("Render(%+v, %v):\n got %q\nwant %q", c.s, c.elapsed, got, c.want)
		}
	}
}

// TestNotATerminal: on a buffer or a pipe there is no bar, and following a
// status prints nothing at all.
func TestNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var buf bytes.Buffer
	for _, out := range []any{&buf, w} {
		b := New(out.(interface{ Write([]byte) (int, error) }), false)
		if b != nil {
			t.Fatalf("New(%T) = %v, want nil", out, b)
		}
		stop := b.Follow(time.Millisecond, func() (Status, bool) { return Status{Done: 1, Total: 2}, true })
		time.Sleep(20 * time.Millisecond)
		stop()
		b.Draw(Status{Detail: "x"})
		b.Clear()
	}
	w.Close()
	var piped bytes.Buffer
	piped.ReadFrom(r)
	if buf.Len() != 0 || piped.Len() != 0 {
		t.Errorf("printed %q on a buffer and %q on a pipe, want nothing", buf.String(), piped.String())
	}
}
