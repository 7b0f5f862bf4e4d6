package bench

import (
	"fmt"
	"time"

	"github.com/imp2/imp2/internal/results"
)

// OptionError says which field of Options is out of range: Field is its
// name ("Delays"), Msg the rest of the sentence, starting with the value.
type OptionError struct {
	Field, Msg string
}

func (e *OptionError) Error() string { return e.Field + e.Msg }

func optErr(field, format string, a ...any) error {
	return &OptionError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Validate says which field of o is out of range; Run and AB call it.
func (o *Options) Validate() error {
	for _, d := range o.Delays {
		if d > MaxDelay {
			return optErr("Delays", " %v: at most %v of busy work per event (a slower consumer is a stalled one: every sample's drain gives up %v after its flood)", d, MaxDelay, DrainLimit)
		}
	}
	switch o.Source {
	case results.SourceKmod, results.SourceNFLOG, results.SourceEmu, results.SourceBPF, results.SourceBPFTC:
	default:
		return optErr("Source", " %q: want kmod, nflog, emu, bpf or bpf-tc", o.Source)
	}
	if o.VM && o.Source == results.SourceEmu {
		return optErr("VM", " runs kmod or nflog (or bpf); emu runs on the host")
	}
	if o.Kernel != "" && !o.VM {
		return optErr("Kernel", " %s: only a sweep in the VM boots another kernel; the host runs its own", o.Kernel)
	}
	if o.Duration <= 0 || o.Duration > 10*time.Minute {
		return optErr("Duration", " %v: want more than 0 and at most 10m", o.Duration)
	}
	if o.Reps < 1 {
		return optErr("Reps", " %d: want at least 1", o.Reps)
	}
	for _, b := range o.RcvBufs {
		if b < 4608 {
			return optErr("RcvBufs", " %d: the kernel's minimum is 4608 bytes", b)
		}
	}
	return nil
}
