package pcapnl

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// FileWriter is a Writer on a file it created; Close closes both.
type FileWriter struct {
	*Writer
	f *os.File
}

// Create creates (or truncates) the trace file path and returns a Writer
// on it whose Format and Compression are the ones FormatFor gives path;
// those of opts are ignored. Tools that open their output themselves
// (imp2-record, which refuses to overwrite; imp2-replay, which creates it
// only once the replay starts) set them with FormatFor.
func Create(path string, opts WriterOptions) (*FileWriter, error) {
	opts.Format, opts.Compression = FormatFor(path)
	f, err := OpenOutput(path)
	if err != nil {
		return nil, err
	}
	w, err := NewWriter(f, opts)
	if err != nil {
		f.Close()
		if st, serr := os.Stat(path); serr == nil && st.Mode().IsRegular() {
			os.Remove(path) // not a FIFO or a device someone else made
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &FileWriter{Writer: w, f: f}, nil
}

// OpenOutput creates (or truncates) path for writing only. Not os.Create,
// which opens O_RDWR: on a FIFO that makes this process a reader of its
// own output, so once the real reader exits writes neither fail (EPIPE)
// nor finish but block forever on the full pipe.
func OpenOutput(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Close closes the Writer, then the file.
func (w *FileWriter) Close() error {
	err := w.Writer.Close()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", w.f.Name(), err)
	}
	return nil
}

// ErrTerminal is what CheckNotTerminal returns: a binary trace would go
// to a terminal.
var ErrTerminal = errors.New("stdout is a terminal; redirect it or name a file")

// CheckNotTerminal refuses to write a trace to w when it is a terminal
// (as imp2-record always has): the bytes would garble it and be lost. Anything
// but a terminal *os.File (a pipe, a file, a buffer) passes.
func CheckNotTerminal(w io.Writer) error {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return ErrTerminal
	}
	return nil
}
