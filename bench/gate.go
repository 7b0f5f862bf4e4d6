package bench

import (
	"fmt"

	"github.com/imp2/imp2/internal/results"
)

// ExactOnSameKernel removes the exact counts from both runs when their
// kernels differ and says so: another kernel's truesize makes another
// count, which is no regression of ours.
func ExactOnSameKernel(base, new *results.Run) string {
	bk, nk := base.Environment.KernelRelease, new.Environment.KernelRelease
	if bk == nk {
		return ""
	}
	for _, r := range []*results.Run{base, new} {
		for i := range r.Steps {
			for j := range r.Steps[i].Samples {
				r.Steps[i].Samples[j].BurstHeld = nil
			}
		}
	}
	return fmt.Sprintf("exact counts (burst-held) not compared: the baseline ran on kernel %s, this run on %s; refresh the baseline on this kernel (make baseline) to gate them", bk, nk)
}
