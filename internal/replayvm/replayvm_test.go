package replayvm

import (
	"fmt"
	"testing"
)

func TestVMGuestArgs(t *testing.T) {
	got := GuestArgs([]string{"-i", "a", "-to", "icmp", "-vm", "-vm-consumer", "/x 1", "-i=b", "-verify", "-vm-timeout=1m", "-pps", "10"})
	want := []string{"-to", "icmp", "-verify", "-pps", "10"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
