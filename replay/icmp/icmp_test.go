package icmp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/replay/icmp"
)

// TestVerifyRcvBufBound: the verifier's receive buffer goes to the
// kernel's int, doubled: up to imp2.MaxRcvBuf it is valid, past it refused
// by name.
func TestVerifyRcvBufBound(t *testing.T) {
	for _, c := range []struct {
		rcvbuf  int64
		wantErr string
	}{
		{16 << 20, ""},
		{imp2.MaxRcvBuf, ""},
		{imp2.MaxRcvBuf + 1, "icmp: VerifyRcvBuf 1073741824: want at most 1073741823 bytes"},
		{4 << 30, "icmp: VerifyRcvBuf 4294967296: want at most 1073741823 bytes"},
		{-1, "icmp: VerifyRcvBuf cannot be negative"},
	} {
		o := icmp.Options{Verify: true, VerifyRcvBuf: c.rcvbuf, VerifyWait: time.Second}
		err := o.Validate()
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("VerifyRcvBuf %d: %v; want %q", c.rcvbuf, err, c.wantErr)
		}
	}
}
