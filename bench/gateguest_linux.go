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
	"time"

	"golang.org/x/sys/unix"

	"github.com/imp2/imp2/internal/flood"
	"github.com/imp2/imp2/internal/netns"
)

// gateJob is the guest's part of an A/B gate: the module files to
// interleave (index 0 the base) and, for each, the imp2-bench binary
// whose GateConsumer drains its floods (its own revision's consumer),
// how many repetitions of each, how many packets each flood sends, and
// which module's exact counts to measure at which receive buffers
// (Probe < 0: none).
type gateJob struct {
	Modules, Consumers, Labels []string
	Reps, Count                int
	Probe                      int
	ProbeRcvBufs               []int
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
	if len(job.Consumers) != len(job.Modules) {
		return nil, fmt.Errorf("the gate's job names %d consumers for %d modules", len(job.Consumers), len(job.Modules))
	}
	if _, err := gateOnce(ctx, topo, job.Modules[0], job.Consumers[0], job.Count); err != nil {
		return nil, fmt.Errorf("warm-up with %s: %w", job.Labels[0], err)
	}
	k := len(job.Modules)
	for rep := 0; rep < job.Reps; rep++ {
		for j := 0; j < k; j++ {
			m := (rep + j) % k
			if rep%2 == 1 && k == 2 {
				m = 1 - j
			}
			s, err := gateOnce(ctx, topo, job.Modules[m], job.Consumers[m], job.Count)
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

// gateOnce loads module, starts bin's draining consumer (GateConsumer)
// and measures one unpaced flood of count packets: its wall time, and
// the CPU time of this process (the flood's sending, with the hook's
// softirq work) and of the consumer's together.
func gateOnce(ctx context.Context, topo *netns.Topology, module, bin string, count int) (GateSample, error) {
	var s GateSample
	if err := loadModule(ctx, module); err != nil {
		return s, err
	}
	src, err := newKmodSource(topo)
	if err != nil {
		return s, err
	}
	c, err := startGateConsumer(ctx, bin, topo.Dst)
	if err != nil {
		return s, err
	}
	r, cpu, busy, err := gateFlood(ctx, topo, src, c, count, &s)
	if err != nil {
		return s, c.fail(err)
	}
	if err := c.stop(); err != nil {
		return s, err
	}
	n := float64(r.Sent)
	s.Sent = int64(r.Sent)
	s.WallNs = float64(r.Elapsed.Nanoseconds()) / n
	s.CPUNs = float64(cpu) / n
	s.ConsumerNs /= n
	s.BusyNs = float64(busy) / n
	return s, nil
}

// gateFlood sends count packets to c and waits until the module has
// handled them all and c has read every one the module queued; cpu is
// this process's CPU time and c's over it, busy the guest's (/proc/stat);
// c's own part goes into s.ConsumerNs (in ns, not yet per event).
func gateFlood(ctx context.Context, topo *netns.Topology, src *kmodSource, c *gateConsumerProc, count int, s *GateSample) (r flood.Result, cpu, busy int64, err error) {
	f, err := newFlood(topo, flood.Config{Dst: netns.DstAddr, Count: count, Duration: 30 * time.Second})
	if err != nil {
		return r, 0, 0, err
	}
	defer f.Close()
	handled := func() (int64, bool, error) { n, err := src.handled(c.port); return n, true, err }
	sent0, dropped0, err := src.counts(c.port)
	if err != nil {
		return r, 0, 0, err
	}
	self0, busy0, err := guestCPU()
	if err != nil {
		return r, 0, 0, err
	}
	cons0, events0, err := c.cpu()
	if err != nil {
		return r, 0, 0, err
	}
	if r, err = f.Run(ctx); err != nil {
		return r, 0, 0, err
	}
	if r.Sent == 0 {
		return r, 0, 0, fmt.Errorf("the flood sent nothing")
	}
	if err := handledAll(ctx, handled, sent0+dropped0+int64(r.Sent)); err != nil {
		return r, 0, 0, fmt.Errorf("after a flood of %d packets: %w", count, err)
	}
	sent1, _, err := src.counts(c.port)
	if err != nil {
		return r, 0, 0, err
	}
	cons1, err := c.readAll(ctx, events0+sent1-sent0)
	if err != nil {
		return r, 0, 0, err
	}
	self1, busy1, err := guestCPU()
	if err != nil {
		return r, 0, 0, err
	}
	s.ConsumerNs = float64(cons1 - cons0)
	return r, self1 - self0 + cons1 - cons0, busy1 - busy0, nil
}

// drainUntil reads c's events, calling fn for each, until stop is closed.
func drainUntil(c consumer, stop <-chan struct{}, fn func(*event)) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		err := c.read(time.Now().Add(pollEvery), fn)
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
	if self, err = selfCPU(); err != nil {
		return 0, 0, err
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	busy, err = procStatBusy(string(b))
	return self, busy, err
}

// selfCPU is this process's CPU time (getrusage, all its threads), in ns.
func selfCPU() (int64, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), nil
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
