package bench

import (
	"errors"
	"testing"

	"github.com/imp2/imp2/internal/bpfnf"
)

func TestRingSizeFor(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 4096}, {4608, 8192}, {16384, 16384}, {212992, 262144}, {1 << 20, 1 << 20}} {
		if got := ringSizeFor(c.n); got != c.want {
			t.Errorf("ringSizeFor(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestCheckBPFKernel: a sweep in the VM refuses a kernel without
// netfilter BPF links before it boots, naming the kernels that have them.
func TestCheckBPFKernel(t *testing.T) {
	if err := checkBPFKernel("6.1.0-57-amd64"); !errors.Is(err, bpfnf.ErrNoNetfilterLink) {
		t.Errorf("6.1: %v, want ErrNoNetfilterLink", err)
	}
	for _, r := range []string{"6.4.0", "6.12.95+deb12-amd64", "7.3.4+deb13-rt-amd64"} {
		if err := checkBPFKernel(r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	if err := checkBPFKernel("linux"); err == nil {
		t.Error("an unreadable release passed")
	}
}
