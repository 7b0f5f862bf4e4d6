package bench

// The gate's consumer as a process of its own (GateConsumer), so that
// each side of the A/B gate drains its floods with its own revision's
// consumer code: the base's binary for the base's floods, the
// candidate's for the candidate's. The harness (gateOnce) floods and
// asks the consumer for its CPU time over a pipe.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/internal/netns"
)

// GateConsumer is the gate's draining consumer in the network namespace
// ns: it opens the imp2 consumer of a cost flood (gateRcvBuf,
// NETLINK_NO_ENOBUFS), writes "port <netlink port>", and then answers
// every line it reads from in with "cpu <ns> <events>": its own CPU time
// so far (getrusage) and the events it has read. It drains until in ends.
func GateConsumer(ctx context.Context, ns string, in io.Reader, out io.Writer) error {
	src := &kmodSource{dst: netns.NS{Name: ns}}
	c, err := src.open(gateRcvBuf/2, true)
	if err != nil {
		return err
	}
	defer c.close()
	fmt.Fprintf(out, "port %d\n", c.(*imp2Consumer).c.PortID())
	var events atomic.Int64
	stop := make(chan struct{})
	drained := make(chan error, 1)
	go func() {
		drained <- drainUntil(c, stop, func(*event) {
			consumerTestDelay()
			events.Add(1)
		})
	}()
	lines := bufio.NewScanner(in)
	for lines.Scan() && ctx.Err() == nil {
		self, err := selfCPU()
		if err != nil {
			close(stop)
			return err
		}
		fmt.Fprintf(out, "cpu %d %d\n", self, events.Load())
	}
	close(stop)
	return <-drained
}

// gateConsumerProc is the harness's end of a GateConsumer process.
type gateConsumerProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr strings.Builder
	port   uint32
}

// startGateConsumer runs bin's GateConsumer in ns and waits for its port.
func startGateConsumer(ctx context.Context, bin string, ns netns.NS) (*gateConsumerProc, error) {
	p := &gateConsumerProc{cmd: exec.CommandContext(ctx, bin, GateConsumerCommand, ns.Name)}
	p.cmd.Env = append(os.Environ(), guestEnv+"=1")
	p.cmd.Stderr = &p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("consumer %s: %w", bin, err)
	}
	line, err := p.out.ReadString('\n')
	if err == nil {
		_, err = fmt.Sscanf(line, "port %d\n", &p.port)
	}
	if err != nil {
		return nil, p.fail(fmt.Errorf("no port line (%q): %v", line, err))
	}
	return p, nil
}

// cpu asks the consumer for its CPU time (ns) and events read so far.
func (p *gateConsumerProc) cpu() (cpuNs, events int64, err error) {
	if _, err := io.WriteString(p.in, "cpu\n"); err != nil {
		return 0, 0, err
	}
	line, err := p.out.ReadString('\n')
	if err == nil {
		_, err = fmt.Sscanf(line, "cpu %d %d\n", &cpuNs, &events)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reply %q: %v", line, err)
	}
	return cpuNs, events, nil
}

// readAll waits until the consumer has read events in all (the flood's
// queued events: its CPU time then has every one's reading in it) and
// returns its CPU time then.
func (p *gateConsumerProc) readAll(ctx context.Context, events int64) (cpuNs int64, err error) {
	var got int64
	for end := time.Now().Add(handledLimit); time.Now().Before(end); {
		if cpuNs, got, err = p.cpu(); err != nil || got >= events {
			return cpuNs, err
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("read %d of the %d events queued within %v", got, events, handledLimit)
}

// stop ends the consumer: its input closed, it must exit cleanly.
func (p *gateConsumerProc) stop() error {
	p.in.Close()
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("consumer %s: %v: %s", p.cmd.Path, err, strings.TrimSpace(p.stderr.String()))
	}
	return nil
}

// fail kills the consumer and names it, with what it said, in err.
func (p *gateConsumerProc) fail(err error) error {
	p.cmd.Process.Kill()
	p.in.Close()
	p.cmd.Wait()
	return fmt.Errorf("consumer %s: %v; its stderr: %s", p.cmd.Path, err, strings.TrimSpace(p.stderr.String()))
}
