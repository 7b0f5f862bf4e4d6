// Package progress draws the one progress bar of the imp2 tools: done of
// total with an estimate of the time left, redrawn in place on a
// terminal, and nothing at all elsewhere (a log, a pipe, a file), where a
// carriage-return animation is only noise. imp2-bench run shows the sweep
// points done, imp2-record the frames of -count or the time of -duration.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Status is what a bar shows: Done of Total (Total 0: no known end, the
// line shows Detail alone) and a Detail after it.
type Status struct {
	Done, Total float64
	// Count says Done and Total are counts, shown as "12/36"; otherwise
	// they are seconds.
	Count  bool
	Detail string
}

// IsTerminal reports whether w is a terminal (an *os.File on one).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a line redrawn in place. A nil *Bar, what New returns for a
// writer that is not a terminal, draws nothing.
type Bar struct {
	w     io.Writer
	start time.Time
	width int
	// cols is the terminal's width now (0: unknown): a longer line would
	// wrap, and "\r" would then redraw only its last row, leaving a trail.
	cols  func() int
	mu    sync.Mutex
	drawn bool
}

// New returns a bar on w if w is a terminal (or force, for tests and
// callers that know better), else nil.
func New(w io.Writer, force bool) *Bar {
	if !force && !IsTerminal(w) {
		return nil
	}
	b := &Bar{w: w, start: time.Now(), width: barWidth, cols: func() int { return 0 }}
	if f, ok := w.(*os.File); ok {
		b.cols = func() int {
			cols, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return cols
		}
	}
	return b
}

const barWidth = 24

// Draw redraws the line with s.
func (b *Bar) Draw(s Status) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	line := Render(s, time.Since(b.start), b.width)
	if cols := b.cols(); cols > 1 {
		line = truncate(line, cols-1) // the cursor stays on the line
	}
	fmt.Fprintf(b.w, "\r\033[K%s", line)
	b.drawn = true
}

// Clear removes the line, so that what is printed next starts on a clean
// one.
func (b *Bar) Clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// Follow draws status() every interval until the function it returns is
// called, which clears the line; on a nil Bar it does nothing.
func (b *Bar) Follow(every time.Duration, status func() (Status, bool)) (stop func()) {
	if b == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				b.Clear()
				return
			case <-t.C:
			}
			if s, ok := status(); ok {
				b.Draw(s)
			}
		}
	}()
	return func() { close(quit); <-done }
}

// Render formats s after elapsed as one line: a bar of width cells, the
// fraction done, done/total and the time left at the rate so far, then
// the detail.
func Render(s Status, elapsed time.Duration, width int) string {
	if s.Total <= 0 {
		return s.Detail
	}
	frac := min(max(s.Done/s.Total, 0), 1)
	full := int(frac * float64(width))
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	eta := "?"
	if frac > 0 {
		eta = fmtDuration(time.Duration(float64(elapsed) * (1 - frac) / frac))
	}
	amount := fmt.Sprintf("%s/%s", fmtDuration(seconds(s.Done)), fmtDuration(seconds(s.Total)))
	if s.Count {
		amount = fmt.Sprintf("%.0f/%.0f", s.Done, s.Total)
	}
	line := fmt.Sprintf("[%s] %3.0f%% %s ETA %s", bar, 100*frac, amount, eta)
	if s.Detail != "" {
		line += "  " + s.Detail
	}
	return line
}

// truncate cuts line to at most n characters.
func truncate(line string, n int) string {
	for i := range line {
		if n == 0 {
			return line[:i]
		}
		n--
	}
	return line
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// fmtDuration is a duration to the second, as 1h02m03s, 2m03s or 3s.
func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
