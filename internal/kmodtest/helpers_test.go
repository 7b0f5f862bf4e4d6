package kmodtest

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
)

// Loopback addresses: the echo request goes 127.0.0.1 -> pingDst and the
// kernel's reply comes back, so src and dest differ in each event and a
// byte-order mistake shows.
var (
	pingSrc = netip.MustParseAddr("127.0.0.1")
	pingDst = netip.MustParseAddr("127.1.2.3")
)

// received is one event as a consumer saw it.
type received struct {
	hdr imp2.Header
	ev  imp2.Event
}

func dial(t *testing.T, cfg imp2.Config) *imp2.Conn {
	t.Helper()
	c, err := imp2.Dial(cfg)
	if err != nil {
		t.Fatalf("Dial(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ping sends n echo requests with the given id, sequence numbers 1..n. Each
// makes two events: the request and the kernel's reply.
func ping(t *testing.T, id uint16, n int) {
	t.Helper()
	s, err := newPinger(pingDst)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 1; i <= n; i++ {
		if err := s.Send(id, uint16(i), []byte("imp2-kmodtest")); err != nil {
			t.Fatal(err)
		}
	}
}

// readEvents reads until want events arrived or nothing came for idle.
// ENOBUFS is counted, not fatal.
func readEvents(t *testing.T, c *imp2.Conn, want int, idle time.Duration) (evs []received, overruns int) {
	t.Helper()
	defer c.SetReadDeadline(time.Time{})
	msgs := make([]imp2.Message, 16)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 256)
	}
	for len(evs) < want {
		c.SetReadDeadline(time.Now().Add(idle))
		n, err := c.ReadBatch(msgs)
		if errors.Is(err, imp2.ErrOverrun) {
			overruns++
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return evs, overruns
		}
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		for _, m := range msgs[:n] {
			h, err := imp2.ParseHeader(m.Data())
			if err != nil {
				t.Fatalf("event header: %v", err)
			}
			if h.Type != imp2.TypeEvent {
				t.Fatalf("message type %d, want IMP2_K_MSG", h.Type)
			}
			ev, err := imp2.ParseEvent(m.Data()[imp2.HeaderLen:h.Len])
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, received{h, ev})
		}
	}
	return evs, overruns
}

// checkSequence asserts that seqs run 1, 2, 3, ... without a gap.
func checkSequence(t *testing.T, name string, evs []received) {
	t.Helper()
	for i, r := range evs {
		if r.hdr.Seq != uint32(i+1) {
			t.Fatalf("%s: event %d has nlmsg_seq %d, want %d", name, i, r.hdr.Seq, i+1)
		}
	}
}

func stats(t *testing.T, c *imp2.Conn) imp2.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// procNet reads a file of /proc/net for this goroutine's thread. Plain
// /proc/net is the thread group leader's view, and TestNamespaces may
// leave the main thread in a namespace of its own (Go parks, rather than
// ends, a main thread whose locked goroutine exits).
func procNet(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/net/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dmesgProblems returns kernel log lines that signal a bug.
func dmesgProblems(t *testing.T) []string {
	t.Helper()
	var bad []string
	for _, l := range strings.Split(run(t, "dmesg"), "\n") {
		for _, p := range []string{"WARNING:", "BUG:", "Oops", "Call Trace", "refcount_t", "list_del corruption", "sleeping function called", "scheduling while atomic"} {
			if strings.Contains(l, p) {
				bad = append(bad, l)
				break
			}
		}
	}
	return bad
}
