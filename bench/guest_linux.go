package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/imp2/imp2/internal/vm"
)

// guestJob is what the host hands the guest in the share: the sweep as
// Options, not as a command line to parse again.
type guestJob struct {
	Sweep Options
	// Modules are the module files an ab sweep loads in turn, and Labels
	// their names in the results; both empty for a plain sweep.
	Modules, Labels [2]string
	// Gate, when set, is an A/B gate's job instead of a sweep (GateAB).
	Gate *gateJob `json:",omitempty"`
}

// guestJobFile is the job's name in the share, which the guest mounts at
// guestShare.
const (
	guestJobFile = "job.json"
	guestShare   = "/share"
)

// writeGuestJob writes job into the host's share folder and returns the
// guest's command line for it. The guest sweeps on its own kernel, into
// GuestOut, without plots (the host draws them).
func writeGuestJob(share string, job guestJob) (string, error) {
	job.Sweep.VM, job.Sweep.Kernel = false, ""
	job.Sweep.Out, job.Sweep.Plot = GuestOut, false
	b, err := json.Marshal(job)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(share, guestJobFile), b, 0o644); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s=1 /imp2-bench %s %s >/dev/null", guestEnv, GuestCommand,
		vm.ShellQuote([]string{guestShare + "/" + guestJobFile})), nil
}

// Guest is the guest's side of a sweep in the VM (Options.VM, AB): it
// reads the job file the host wrote into the share, runs it, and writes
// what completed into GuestOut for the host to read. partial says the
// sweep was interrupted (the run written is partial, or a side of ab has
// no sample); ErrNothingCompleted that nothing was written.
func Guest(ctx context.Context, file string, progress io.Writer) (partial bool, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	var job guestJob
	if err := json.Unmarshal(b, &job); err != nil {
		return false, fmt.Errorf("%s: %w", file, err)
	}
	job.Sweep.Progress = progress
	if job.Gate != nil {
		return false, gateGuest(ctx, *job.Gate, GuestOut, progress)
	}
	if job.Modules[0] != "" {
		runs, err := ABGuest(ctx, job.Sweep, job.Modules, job.Labels)
		return runs[0] == nil || runs[1] == nil || runs[0].Partial || runs[1].Partial, err
	}
	run, err := Run(ctx, job.Sweep)
	if err != nil {
		return false, err
	}
	return run.Partial, WriteOutputs(job.Sweep, run, io.Discard)
}
