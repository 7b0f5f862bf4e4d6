package replay

import (
	"errors"
	"io"

	"github.com/imp2/imp2/pcapnl"
)

// frameSource is what the input goroutine reads: one pcapnl.Reader, or a
// merge of several.
type frameSource interface {
	Next() (pcapnl.Frame, error)
}

// merger interleaves several traces by timestamp (several Inputs),
// stable: on equal times the earlier input goes first. The returned frame's
// Data is valid until the next call, as with pcapnl.Reader. An input that
// fails ends there; the others go on, and the first failure is returned
// after the last frame.
type merger struct {
	names []string
	rs    []frameSource
	cur   []pcapnl.Frame
	live  []bool
	last  int // input whose frame was returned last; advanced on the next call
	err   error
}

func newMerger(names []string, rs []frameSource) *merger {
	m := &merger{names: names, rs: rs, cur: make([]pcapnl.Frame, len(rs)), live: make([]bool, len(rs)), last: -1}
	for i := range rs {
		m.advance(i)
	}
	return m
}

func (m *merger) advance(i int) {
	fr, err := m.rs[i].Next()
	if err != nil {
		m.live[i] = false
		if !errors.Is(err, io.EOF) && m.err == nil {
			m.err = &InputError{Name: m.names[i], Err: err}
		}
		return
	}
	m.cur[i], m.live[i] = fr, true
}

func (m *merger) Next() (pcapnl.Frame, error) {
	if m.last >= 0 {
		m.advance(m.last)
		m.last = -1
	}
	best := -1
	for i := range m.rs {
		if m.live[i] && (best < 0 || m.cur[i].Time < m.cur[best].Time) {
			best = i
		}
	}
	if best < 0 {
		if m.err != nil {
			return pcapnl.Frame{}, m.err
		}
		return pcapnl.Frame{}, io.EOF
	}
	m.last = best
	return m.cur[best], nil
}
