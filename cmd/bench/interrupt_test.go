package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imp2/imp2/bench"
	"github.com/imp2/imp2/internal/netns"
	"github.com/imp2/imp2/internal/results"
)

// buildBench builds imp2-bench for tests that signal it.
func buildBench(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "imp2-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchProc is an imp2-bench process whose stderr is read line by line.
type benchProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	lines  chan string // stderr, closed at EOF
	mu     sync.Mutex
	stderr strings.Builder
}

func startBench(t *testing.T, bin string, args ...string) *benchProc {
	t.Helper()
	p := &benchProc{cmd: exec.Command(bin, args...), lines: make(chan string, 1000)}
	p.cmd.Stdout = &p.stdout
	r, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() }) // if a check failed before Wait
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for lines any more
			}
		}
		close(p.lines)
	}()
	return p
}

// waitLine waits until a stderr line contains substr (generously bounded:
// the machine may be loaded).
func (p *benchProc) waitLine(t *testing.T, substr string) {
	t.Helper()
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("imp2-bench ended before printing %q:\n%s", substr, p.errText())
			}
			if strings.Contains(l, substr) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q from imp2-bench within 3 minutes:\n%s", substr, p.errText())
		}
	}
}

func (p *benchProc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait returns the exit status.
func (p *benchProc) wait(t *testing.T) int {
	t.Helper()
	err := p.cmd.Wait()
	for range p.lines { // the reader is done with stderr
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// checkPartial asserts what an interrupted run leaves: results.json marked
// partial with the samples that completed, bench.txt, the plots and a
// summary that says so.
func checkPartial(t *testing.T, dir, signal string, p *benchProc) *results.Run {
	t.Helper()
	run, err := results.Read(filepath.Join(dir, bench.ResultsFile))
	if err != nil {
		t.Fatalf("%v\n%s", err, p.errText())
	}
	in := run.Interruption
	if !run.Partial || in == nil || in.Signal != signal {
		t.Fatalf("results.json: partial %v, interruption %+v; want partial by %s", run.Partial, in, signal)
	}
	have := 0
	for _, st := range run.Steps {
		have += len(st.Samples)
	}
	if have == 0 || have != in.CompletedSamples || have >= in.PlannedSamples {
		t.Errorf("%d samples in results.json, interruption says %d of %d", have, in.CompletedSamples, in.PlannedSamples)
	}
	// The step dropped, if the signal came during a sample (it may also
	// come between two, on a loaded machine): never one of those kept whole.
	for _, k := range in.CompletedSteps {
		if k == in.InterruptedStep {
			t.Errorf("step %s is both complete and interrupted", k)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, bench.BenchFile)); err != nil || !bytes.Contains(b, []byte("partial: true")) {
		t.Errorf("%s: %v, or not marked partial", bench.BenchFile, err)
	}
	checkPlots(t, filepath.Join(dir, bench.PlotsDir))
	if svg, err := os.ReadFile(filepath.Join(dir, bench.PlotsDir, "rate.svg")); err != nil || !bytes.Contains(svg, []byte("PARTIAL")) {
		t.Errorf("rate.svg does not say the run is partial (%v)", err)
	}
	if out := p.stdout.String(); !strings.Contains(out, "PARTIAL: stopped by "+signal) || !strings.Contains(out, "marked partial") {
		t.Errorf("summary does not say the run is partial:\n%s", out)
	}
	return run
}

// checkNothingLeft asserts that the run with this pid left no namespace,
// no veth in the root namespace and no nft table of the bench.
func checkNothingLeft(t *testing.T, pid int) {
	t.Helper()
	prefix := netns.DefaultPrefix + "-" + strconv.Itoa(pid) + "-"
	if left := namespaces(prefix); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), prefix) {
		t.Errorf("veth left in the root namespace:\n%s", out)
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil && strings.Contains(string(out), "imp2bench") {
		t.Errorf("nft table left in the root namespace:\n%s", out)
	}
}

// TestInterruptWritesPartial interrupts a real NFLOG sweep after its
// first sample: the run must exit 130 with what completed written, marked
// partial, and its namespaces, veth and nft table gone.
func TestInterruptWritesPartial(t *testing.T) {
	bin := buildBench(t)
	dir := t.TempDir()
	p := startBench(t, bin, "run", "-source", "nflog", "-rates", "500,2000", "-rcvbufs", "212992,16K",
		"-duration", "300ms", "-reps", "2", "-overhead=false", "-out", dir)
	p.waitLine(t, "rep 1: ") // the first sample completed
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t); code != exitInterrupted {
		t.Fatalf("exit %d after SIGINT, want %d\n%s", code, exitInterrupted, p.errText())
	}
	got := checkPartial(t, dir, "SIGINT", p)
	if got.Source.Kind != results.SourceNFLOG || got.Steps[0].Samples[0].Received == 0 {
		t.Errorf("the completed sample is not an NFLOG measurement: %+v", got.Steps[0].Samples[0])
	}
	if !strings.Contains(p.errText(), "SIGINT: stopping; the sample in progress is dropped") {
		t.Errorf("no word of the interrupt on stderr:\n%s", p.errText())
	}
	checkNothingLeft(t, p.cmd.Process.Pid)
	// What is there can be read and drawn again, but not gated on.
	var o, e bytes.Buffer
	if code := run([]string{"compare", dir, dir}, &o, &e); code != exitUsage || !strings.Contains(e.String(), dir+" is a partial run (PARTIAL: stopped by SIGINT") {
		t.Errorf("compare of a partial run: exit %d, %s", code, e.String())
	}
	if code := run([]string{"plot", dir}, &o, &e); code != exitOK {
		t.Errorf("plot of a partial run: exit %d, %s", code, e.String())
	}
}

// TestTermStopsLongDelay sends SIGTERM while the consumer busy-works 1 s
// per event (the largest -delays allows): the spin must notice, so that
// the run stops within seconds, not after the batch of events in hand.
func TestTermStopsLongDelay(t *testing.T) {
	bin := buildBench(t)
	dir := t.TempDir()
	p := startBench(t, bin, "run", "-source", "emu", "-rates", "1000", "-rcvbufs", "212992", "-delays", "0,1s",
		"-duration", "5s", "-reps", "1", "-overhead=false", "-out", dir)
	p.waitLine(t, "rep 1: ") // the delay-0 sample; the 1 s one has begun
	// Its flood lasts 5 s, and each event it brings costs a second: give
	// the consumer time to be in the spin (where the signal lands does
	// not decide the outcome, only what it tests).
	time.Sleep(3 * time.Second)
	sent := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLine(t, "SIGTERM: stopping")
	stopped := time.Since(sent)
	t.Logf("stopped %v after SIGTERM", stopped.Round(time.Millisecond))
	if code := p.wait(t); code != exitInterrupted {
		t.Fatalf("exit %d after SIGTERM, want %d\n%s", code, exitInterrupted, p.errText())
	}
	// Before the spin observed the context, a batch of up to 64 events
	// took a second each.
	if stopped > 15*time.Second {
		t.Errorf("the sample stopped %v after SIGTERM, want within 15 s", stopped.Round(time.Millisecond))
	}
	run := checkPartial(t, dir, "SIGTERM", p)
	if in := run.Interruption; len(run.Steps) != 1 || run.Steps[0].ConsumerDelay != 0 || in.InterruptedStep != "rate=1000/rcvbuf=212992/delay=1s" {
		t.Errorf("kept %d steps, interruption %+v; want the delay-0 step, the 1s one interrupted", len(run.Steps), in)
	}
	checkNothingLeft(t, p.cmd.Process.Pid)
}

// TestKilledRunLeftoversRemoved kills a run outright (SIGKILL runs no
// cleanup) and checks that the next run removes its namespaces and says
// so, one line for each.
func TestKilledRunLeftoversRemoved(t *testing.T) {
	bin := buildBench(t)
	p := startBench(t, bin, "run", "-source", "nflog", "-rates", "1000", "-duration", "20s", "-reps", "1",
		"-overhead=false", "-out", t.TempDir())
	pid := p.cmd.Process.Pid
	prefix := fmt.Sprintf("%s-%d-", netns.DefaultPrefix, pid)
	if !waitFor(func() bool { return len(namespaces(prefix)) == 2 }) {
		t.Fatal("the run never built its namespaces")
	}
	dst := netns.NS{Name: prefix + "1-dst"}
	if !waitFor(func() bool {
		out, _ := dst.Command(context.Background(), "nft", "list", "tables").Output()
		return strings.Contains(string(out), "imp2bench")
	}) {
		t.Fatalf("the run never added its nft table in %s", dst.Name)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	left := namespaces(prefix)
	if len(left) != 2 {
		t.Fatalf("SIGKILL left %v; the cleanup check below proves nothing", left)
	}
	_, stderr := runBench(t, "run", "-source", "emu", "-rates", "500", "-rcvbufs", "212992", "-duration", "200ms",
		"-reps", "1", "-overhead=false", "-plot=false", "-trace-frames", "0", "-out", t.TempDir())
	for _, n := range left {
		want := fmt.Sprintf("removed leftover netns %s of a killed run (pid %d), with its link veth0", n, pid)
		if strings.HasSuffix(n, "-dst") {
			want += " and nft table ip imp2bench"
		}
		if !strings.Contains(stderr, want+"\n") {
			t.Errorf("the next run did not say %q:\n%s", want, stderr)
		}
	}
	checkNothingLeft(t, pid)
}

// TestInterruptInVM interrupts a -vm run of the module after the guest's
// first sample: the host forwards the signal into the guest, which writes
// what completed into the share, and the host writes it out as partial.
func TestInterruptInVM(t *testing.T) {
	bin := buildBench(t)
	dir := t.TempDir()
	p := startBench(t, bin, "run", "-vm", "-source", "kmod", "-rates", "500,2000", "-rcvbufs", "212992",
		"-duration", "300ms", "-reps", "2", "-overhead=false", "-out", dir)
	p.waitLine(t, "rep 1: ") // relayed from the guest's console
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t); code != exitInterrupted {
		t.Fatalf("exit %d after SIGINT, want %d\n%s", code, exitInterrupted, p.errText())
	}
	run := checkPartial(t, dir, "SIGINT", p)
	if !run.Environment.InVM || run.Source.Kind != results.SourceKmod {
		t.Errorf("the partial run is not the guest's: in VM %v, source %s", run.Environment.InVM, run.Source.Kind)
	}
	if !strings.Contains(p.errText(), "the guest drops its current sample") {
		t.Errorf("the host did not say it forwarded the interrupt:\n%s", p.errText())
	}
}
