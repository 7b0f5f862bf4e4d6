package pcapnl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

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
