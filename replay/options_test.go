package replay_test

import (
	"strings"
	"testing"

	"github.com/imp2/imp2/replay"
)

// TestReadAheadBound: ReadAhead bounds memory that grows only with the
// trace, so any size is valid (a 1T read-ahead holds a whole large trace);
// a negative one is a mistake, named.
func TestReadAheadBound(t *testing.T) {
	for _, c := range []struct {
		readahead int64
		wantErr   string
	}{
		{0, ""},
		{replay.DefaultReadAhead, ""},
		{4 << 30, ""},
		{1 << 40, ""},
		{-1, "ReadAhead -1 cannot be negative"},
	} {
		o := replay.Options{Inputs: []string{"t.pcapng"}, ReadAhead: c.readahead, Timing: replay.DefaultTiming()}
		err := o.Validate()
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("ReadAhead %d: %v; want %q", c.readahead, err, c.wantErr)
		}
	}
}
