package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/results"
)

// TestGuestJob: the guest gets the host's sweep as it was, except what
// only the host does (the VM, its kernel, the result directory, plots).
func TestGuestJob(t *testing.T) {
	share := t.TempDir()
	host := Options{Source: results.SourceKmod, VM: true, Kernel: "7.3", Rates: []int{500, 1000},
		RcvBufs: []int{16384}, Delays: []time.Duration{0, 20 * time.Microsecond}, Duration: 400 * time.Millisecond,
		Reps: 3, NoENOBUFS: true, QThresh: 1, Out: "results/x", Plot: true, Overhead: true, TraceFrames: 7,
		Progress: os.Stderr, Hard: make(chan struct{})}
	cmd, err := writeGuestJob(share, guestJob{Sweep: host, Modules: [2]string{"/base.ko", "/new.ko"}, Labels: [2]string{"HEAD (abc)", "working tree"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "/imp2-bench " + GuestCommand + " '/share/" + guestJobFile + "'"; !strings.Contains(cmd, want) {
		t.Errorf("guest command %q, want it to run %q", cmd, want)
	}
	b, err := os.ReadFile(filepath.Join(share, guestJobFile))
	if err != nil {
		t.Fatal(err)
	}
	var job guestJob
	if err := json.Unmarshal(b, &job); err != nil {
		t.Fatal(err)
	}
	want := host
	want.VM, want.Kernel, want.Out, want.Plot, want.Progress, want.Hard = false, "", GuestOut, false, nil, nil
	if !reflect.DeepEqual(job.Sweep, want) {
		t.Errorf("guest sweep\n  %+v\nwant\n  %+v", job.Sweep, want)
	}
	if job.Modules != [2]string{"/base.ko", "/new.ko"} || job.Labels != [2]string{"HEAD (abc)", "working tree"} {
		t.Errorf("modules %q, labels %q", job.Modules, job.Labels)
	}
}

// TestGuestBadJob: a job file that is not one names the file.
func TestGuestBadJob(t *testing.T) {
	p := filepath.Join(t.TempDir(), guestJobFile)
	os.WriteFile(p, []byte(`{"Sweep": [`), 0o644)
	if _, err := Guest(context.Background(), p, nil); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Guest(%s) = %v, want an error naming the file", p, err)
	}
}
