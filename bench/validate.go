package bench

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/results"
)

// OptionError says which field of Options is out of range: Field is its
// name ("Delays"), Msg the rest of the sentence, starting with the value.
// OverwrittenBy, when set, is the field that would have it done anyway,
// overwriting ("Force").
type OptionError struct {
	Field, Msg, OverwrittenBy string
}

func (e *OptionError) Error() string { return e.Named(func(field string) string { return field }) }

// Named is the error with each field called what name makes of it: a
// command names its flags.
func (e *OptionError) Named(name func(field string) string) string {
	if e.OverwrittenBy == "" {
		return name(e.Field) + e.Msg
	}
	return fmt.Sprintf("%s%s (%s overwrites it)", name(e.Field), e.Msg, name(e.OverwrittenBy))
}

func optErr(field, format string, a ...any) error {
	return &OptionError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// refuseOverwrite refuses, unless force, the result directories dirs
// that already hold a run (ResultsFile): a sweep takes minutes and an
// earlier one's results may be their only copy. A new or empty directory
// is fine.
func refuseOverwrite(force bool, dirs ...string) error {
	for _, d := range dirs {
		if !force && fileExists(filepath.Join(d, ResultsFile)) {
			return &OptionError{Field: "Out", Msg: fmt.Sprintf(" %s: holds the %s of an earlier run", d, ResultsFile), OverwrittenBy: "Force"}
		}
	}
	return nil
}

// FewReps is a note, nil when there is none, that o.Reps samples per step
// are fewer than compare (and ab) need to judge a change at the default
// alpha: the run is fine for a look, its comparisons answer "too few
// samples". Options that Validate refuses get no note, only its error.
func (o *Options) FewReps() *OptionError {
	if need := compare.MinSamples(compare.DefaultConfig().Alpha); o.Reps < need && o.Validate() == nil {
		return &OptionError{Field: "Reps", Msg: fmt.Sprintf(" %d: compare needs at least %d samples per side to judge a change", o.Reps, need)}
	}
	return nil
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
	for _, r := range o.Rates {
		if n := float64(r) * o.Duration.Seconds(); n < MinSamplePackets {
			least := time.Duration(float64(time.Second) * MinSamplePackets / float64(r)).Round(time.Millisecond)
			return optErr("Duration", " %v: a sample at %d packets/s would flood %.0f packet(s), fewer than %d: want at least %v", o.Duration, r, n, MinSamplePackets, least)
		}
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
