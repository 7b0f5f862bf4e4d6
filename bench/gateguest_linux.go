package bench

// The guest's side of the A/B gate (GateAB): every module of the job
// loaded in turn, repetition by repetition, each measuring the cost of a
// fixed unpaced flood through its hook; then the exact counts
// (burst-held) of the module under test.

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/netns"
)

// gateJob is the guest's part of an A/B gate: the module files to
// interleave (index 0 the base), how many repetitions of each, how many
// packets each flood sends, and which module's exact counts to measure
// at which receive buffers (Probe < 0: none).
type gateJob struct {
	Modules, Labels []string
	Reps, Count     int
	Probe           int
	ProbeRcvBufs    []int
}

// gateGuest runs job and writes gateGuestFile into dir.
func gateGuest(ctx context.Context, job gateJob, dir string, progress io.Writer) error {
	out, err := gateMeasure(ctx, job, progress)
	if err != nil {
		return err
	}
	return writeJSON(dir, gateGuestFile, out)
}

// gateMeasure is gateGuest's measuring: the rotation A B, B A (for two
// modules; K modules rotate by one each repetition), so that each
// module's samples interleave in time with the others'.
func gateMeasure(ctx context.Context, job gateJob, progress io.Writer) (*gateSamples, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, err
	}
	out := &gateSamples{Kernel: unix.ByteSliceToString(uts.Release[:]), Labels: job.Labels,
		Samples: make([][]GateSample, len(job.Modules))}
	topo, err := benchTopology(ctx)
	if err != nil {
		return nil, err
	}
	defer topo.Close()
	// A first flood pays for what only a first one does (the guest's
	// first netlink sockets, slabs and page faults of this process): it
	// once made one pair's ratio an outlier. It is not measured.
	if _, err := gateOnce(ctx, topo, job.Modules[0], job.Count); err != nil {
		return nil, fmt.Errorf("warm-up with %s: %w", job.Labels[0], err)
	}
	k := len(job.Modules)
	for rep := 0; rep < job.Reps; rep++ {
		for j := 0; j < k; j++ {
			m := (rep + j) % k
			if rep%2 == 1 && k == 2 {
				m = 1 - j
			}
			s, err := gateOnce(ctx, topo, job.Modules[m], job.Count)
			if err != nil {
				return nil, fmt.Errorf("repetition %d, %s: %w", rep+1, job.Labels[m], err)
			}
			out.Samples[m] = append(out.Samples[m], s)
		}
		fmt.Fprintf(progress, "gate: repetition %d/%d, cpu ns/event:", rep+1, job.Reps)
		for m := range out.Samples {
			fmt.Fprintf(progress, " %.0f", out.Samples[m][rep].CPUNs)
		}
		fmt.Fprintln(progress)
	}
	if job.Probe >= 0 {
		if out.BurstHeld, err = gateProbe(ctx, topo, job.Modules[job.Probe], job.ProbeRcvBufs); err != nil {
			return nil, fmt.Errorf("exact counts of %s: %w", job.Labels[job.Probe], err)
		}
	}
	return out, nil
}

// gateRcvBuf is the consumer's buffer during the cost floods: large, and
// NETLINK_NO_ENOBUFS, so that a consumer falling behind neither stops the
// flood nor costs an overrun's recovery; the hook does its work either way.
const gateRcvBuf = 4 << 20

// gateOnce loads module, opens a draining consumer and measures one
// unpaced flood of count packets: its wall time and the guest's CPU time.
func gateOnce(ctx context.Context, topo *netns.Topology, module string, count int) (GateSample, error) {
	var s GateSample
	if err := loadModule(ctx, module); err != nil {
		return s, err
	}
	src, err := newKmodSource(topo)
	if err != nil {
		return s, err
	}
	c, err := src.open(gateRcvBuf/2, true)
	if err != nil {
		return s, err
	}
	defer c.close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		readErr = drainUntil(c, stop)
	}()
	ru0, busy0, err := guestCPU()
	if err != nil {
		return s, err
	}
	r, _, err := burst(ctx, topo, c, count)
	ru1, busy1, cerr := guestCPU()
	close(stop)
	wg.Wait()
	switch {
	case err != nil:
		return s, err
	case cerr != nil:
		return s, cerr
	case readErr != nil:
		return s, readErr
	case r.Sent == 0:
		return s, fmt.Errorf("the flood sent nothing")
	}
	n := float64(r.Sent)
	s.Sent = int64(r.Sent)
	s.WallNs = float64(r.Elapsed.Nanoseconds()) / n
	s.CPUNs = float64(ru1-ru0) / n
	s.BusyNs = float64(busy1-busy0) / n
	return s, nil
}

// drainUntil reads c's events until stop is closed.
func drainUntil(c consumer, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		err := c.read(time.Now().Add(pollEvery), func(*event) {})
		if err != nil && !os.IsTimeout(err) {
			return err
		}
	}
}

// guestCPU is this process's CPU time (getrusage: the scheduler's exact
// runtime, which includes the softirq work done in our send calls, as
// the guest kernel has no IRQ time accounting) and the busy time of all
// guest CPUs from /proc/stat (every context, at tick resolution), in ns.
func guestCPU() (self, busy int64, err error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, err
	}
	self = ru.Utime.Nano() + ru.Stime.Nano()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	busy, err = procStatBusy(string(b))
	return self, busy, err
}

// procStatBusy sums the non-idle columns of /proc/stat's "cpu" line
// (user nice system idle iowait irq softirq steal ...: all but idle and
// iowait; guest time is already in user), in ns at USER_HZ 100.
func procStatBusy(stat string) (int64, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q is not the cpu total", line)
	}
	var busy int64
	for i, col := range f[1:9] {
		v, err := strconv.ParseInt(col, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: cpu column %d: %w", i+1, err)
		}
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy * 1e7, nil
}

// gateProbe measures module's burst-held count at each receive buffer.
func gateProbe(ctx context.Context, topo *netns.Topology, module string, rcvbufs []int) (map[string]int64, error) {
	if err := loadModule(ctx, module); err != nil {
		return nil, err
	}
	src, err := newKmodSource(topo)
	if err != nil {
		return nil, err
	}
	held := map[string]int64{}
	for _, rb := range rcvbufs {
		n, err := probeBurst(ctx, topo, src, sampleSpec{rcvbuf: rb})
		if err != nil {
			return nil, fmt.Errorf("receive buffer %d: %w", rb, err)
		}
		held[strconv.Itoa(rb)] = n
	}
	return held, nil
}
