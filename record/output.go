package record

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
)

// output is the trace destination, opened before the registration.
type output struct {
	w       io.Writer
	f       *os.File // nil for Options.Output
	path    string
	created bool // by this run: removed again if the recording never starts
	clear   bool // an existing regular file, emptied only once registered (Force)
}

// openOutput opens the trace destination, the file name (Options.Output
// if set). Like a shell's noclobber, it
// refuses an existing regular file unless Force (the recorder may be about
// to hold the only copy of an incident, and so may that file); devices and
// FIFOs (/dev/null, a pipe to a reader) are written as they are.
func openOutput(o *Options, name string) (*output, error) {
	if o.Output != nil {
		return &output{w: o.Output}, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		return &output{w: f, f: f, path: name, created: true}, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	st, err := os.Stat(name)
	regular := err == nil && st.Mode().IsRegular()
	if regular && !o.Force {
		return nil, &ExistsError{Path: name}
	}
	if f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	return &output{w: f, f: f, path: name, clear: regular}, nil
}

// empty truncates a file that Force overwrites, once the recording is
// sure to start, so that a failed start leaves the old trace as it was.
func (o *output) empty() error {
	if !o.clear {
		return nil
	}
	return o.f.Truncate(0)
}

// abandon closes an output the recording never used; a file this run
// created goes too, so that a failed start leaves nothing behind (and no
// file for the next try to need Force for).
func (o *output) abandon() {
	if o.f == nil {
		return
	}
	o.f.Close()
	if o.created {
		os.Remove(o.path)
	}
}

// close closes the trace file at the end (nothing for Options.Output).
func (o *output) close() error {
	if o.f == nil {
		return nil
	}
	return o.f.Close()
}

// countingWriter counts the bytes that reach the output, in n and in
// total (the outputs of a rotated set together).
type countingWriter struct {
	w     io.Writer
	n     atomic.Uint64
	total *atomic.Uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	c.total.Add(uint64(n))
	return n, err
}
