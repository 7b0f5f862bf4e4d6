package bench

import (
	"fmt"
	"time"

	"github.com/imp2/imp2/internal/pace"
	"github.com/imp2/imp2/pcapnl"
)

// capture keeps the frames of one sample window for the run's trace. It
// copies into preallocated memory on the consumer's path and writes the
// trace after the sample, so the measurement does not pay for zstd.
type capture struct {
	limit  int
	arena  []byte
	ends   []int
	times  []int64 // CLOCK_MONOTONIC receive time
	family uint16
}

func newCapture(limit int, family uint16) *capture {
	return &capture{
		limit:  limit,
		arena:  make([]byte, 0, limit*64),
		ends:   make([]int, 0, limit),
		times:  make([]int64, 0, limit),
		family: family,
	}
}

func (c *capture) add(mono int64, b []byte) {
	if len(c.ends) == c.limit {
		return
	}
	c.arena = append(c.arena, b...)
	c.ends = append(c.ends, len(c.arena))
	c.times = append(c.times, mono)
}

// write stores the frames as a pcapnl trace, in the format path names
// (pcapnl.Create), turning monotonic receive times into wall-clock ones.
func (c *capture) write(path, comment string) error {
	w, err := pcapnl.Create(path, pcapnl.WriterOptions{
		Application: "imp2-bench",
		Comment:     comment,
		Family:      c.family,
	})
	if err != nil {
		return err
	}
	wallOffset := time.Now().UnixNano() - pace.Monotonic()
	start := 0
	for i, end := range c.ends {
		fr := pcapnl.Frame{Time: c.times[i] + wallOffset, Direction: pcapnl.ToUser, Family: c.family, Data: c.arena[start:end]}
		if err := w.WriteFrame(&fr); err != nil {
			w.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		start = end
	}
	return w.Close()
}
