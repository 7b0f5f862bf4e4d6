package pcapnl

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/ptytest"
)

func TestCheckNotTerminal(t *testing.T) {
	_, tty := ptytest.Open(t)
	if err := CheckNotTerminal(tty); !errors.Is(err, ErrTerminal) {
		t.Errorf("terminal: %v, want ErrTerminal", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	for _, out := range []*os.File{f, w} {
		if err := CheckNotTerminal(out); err != nil {
			t.Errorf("%s: %v", out.Name(), err)
		}
	}
}

// TestCreateFIFOReaderGone: a trace written into a FIFO whose reader
// exits fails with EPIPE. Created O_RDWR, the writer was a reader of its
// own output and blocked forever once the pipe was full.
func TestCreateFIFOReaderGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rd.Close()
	errc := make(chan error, 1)
	go func() {
		fr := Frame{Time: 1, Direction: ToUser, Family: 31, Data: make([]byte, 1000)}
		for range 1 << 20 {
			if err := w.WriteFrame(&fr); err != nil {
				errc <- err
				return
			}
			if err := w.Flush(); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, syscall.EPIPE) {
			t.Errorf("writing after the reader left: %v, want EPIPE", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writing after the reader left still blocks after 10s")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the FIFO: %v", err)
	}
}
