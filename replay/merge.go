package replay

import (
	"errors"
	"io"
	"math"
	"os"
	"slices"

	"github.com/imp2/imp2/pcapnl"
)

// frameSource is what the input goroutine reads: one pcapnl.Reader, a
// rotated set (fileSet), or a merge of several.
type frameSource interface {
	Next() (pcapnl.Frame, error)
}

// mergeInput is one of several inputs: where its frames begin, and how to
// open it.
type mergeInput struct {
	name  string
	first int64 // its first frame's time; math.MinInt64: open at once
	open  func() (frameSource, func(), error)
}

// newMergeInput looks at an input of a merge: a trace file or a rotated
// set, opened only when the merge reaches its first frame, or a stream
// (a pipe: it cannot be read twice), opened at once.
func newMergeInput(name string) (mergeInput, error) {
	in := mergeInput{name: name, first: math.MinInt64}
	if isSet(name) {
		files, first, err := setFiles(name)
		if err != nil {
			return in, err
		}
		in.first = first
		in.open = func() (frameSource, func(), error) {
			s := &fileSet{names: files}
			return s, func() { s.Close() }, nil
		}
		return in, nil
	}
	in.open = func() (frameSource, func(), error) { return openTrace(name, nil) }
	st, err := os.Stat(name)
	if err != nil {
		return in, err
	}
	if st.Mode().IsRegular() {
		if in.first, err = firstFrameTime(name); err != nil {
			return in, err
		}
	}
	return in, nil
}

// merger interleaves several traces by timestamp (several Inputs),
// stable: on equal times the earlier input goes first. The returned
// frame's Data is valid until the next call, as with pcapnl.Reader. An
// input is opened only once the merge reaches its first frame and closed
// at its end, so inputs that follow each other in time (the files of a
// rotated set given one by one, say by a shell's glob) are read one at a
// time however many there are. An input that fails ends there; the
// others go on, and the first failure is returned after the last frame.
type merger struct {
	ins     []mergeInput
	pending []int // inputs not yet opened, by first frame
	rs      []frameSource
	closers []func()
	cur     []pcapnl.Frame
	live    []bool
	last    int // input whose frame was returned last; advanced on the next call
	err     error
}

func newMerger(ins []mergeInput) *merger {
	n := len(ins)
	m := &merger{ins: ins, rs: make([]frameSource, n), closers: make([]func(), n),
		cur: make([]pcapnl.Frame, n), live: make([]bool, n), last: -1}
	for i := range ins {
		m.pending = append(m.pending, i)
	}
	slices.SortStableFunc(m.pending, func(a, b int) int {
		switch {
		case ins[a].first < ins[b].first:
			return -1
		case ins[a].first > ins[b].first:
			return 1
		}
		return 0
	})
	return m
}

func (m *merger) fail(i int, err error) {
	var ie *InputError // a set's, naming its file
	switch {
	case m.err != nil:
	case errors.As(err, &ie):
		m.err = err
	default:
		m.err = &InputError{Name: m.ins[i].name, Err: err}
	}
}

// activate opens input i and reads its first frame.
func (m *merger) activate(i int) {
	src, closeIt, err := m.ins[i].open()
	if err != nil {
		m.fail(i, err)
		return
	}
	m.rs[i], m.closers[i] = src, closeIt
	m.advance(i)
}

func (m *merger) advance(i int) {
	fr, err := m.rs[i].Next()
	if err != nil {
		m.live[i] = false
		if !errors.Is(err, io.EOF) {
			m.fail(i, err)
		}
		m.closers[i]()
		m.closers[i] = nil
		return
	}
	m.cur[i], m.live[i] = fr, true
}

// best returns the live input with the earliest frame, or -1.
func (m *merger) best() int {
	best := -1
	for i := range m.rs {
		if m.live[i] && (best < 0 || m.cur[i].Time < m.cur[best].Time) {
			best = i
		}
	}
	return best
}

func (m *merger) Next() (pcapnl.Frame, error) {
	if m.last >= 0 {
		m.advance(m.last)
		m.last = -1
	}
	best := m.best()
	// Open the inputs whose first frame comes before (or with) the best
	// so far: one of them may go first.
	for len(m.pending) > 0 && (best < 0 || m.ins[m.pending[0]].first <= m.cur[best].Time) {
		i := m.pending[0]
		m.pending = m.pending[1:]
		m.activate(i)
		best = m.best()
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

// Close closes the inputs still open.
func (m *merger) Close() {
	for i, c := range m.closers {
		if c != nil {
			c()
			m.closers[i] = nil
		}
	}
}
