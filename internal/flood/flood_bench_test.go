//go:build linux

package flood

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/netns"
)

// rxPackets reads the destination veth's receive counter: the same meter
// for every generator.
func rxPackets(b *testing.B, top *netns.Topology) uint64 {
	out, err := top.Dst.Command(context.Background(), "cat", "/sys/class/net/"+netns.Link+"/statistics/rx_packets").Output()
	if err != nil {
		b.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// window measures the receive rate at the destination over d, starting
// after a warm-up, while a generator runs.
func window(b *testing.B, top *netns.Topology, d time.Duration) float64 {
	time.Sleep(200 * time.Millisecond)
	r0, t0 := rxPackets(b, top), time.Now()
	time.Sleep(d)
	r1, t1 := rxPackets(b, top), time.Now()
	return float64(r1-r0) / t1.Sub(t0).Seconds()
}

// BenchmarkUnpacedVsHping3 runs `hping3 --flood --icmp` and an unpaced
// flood one after the other on the same topology and compares the rates
// received at the destination (target: flood ≥ 90% of hping3). Run with
// -benchtime=Nx: each iteration is one pair of 2 s floods.
func BenchmarkUnpacedVsHping3(b *testing.B) {
	if _, err := exec.LookPath("hping3"); err != nil {
		b.Skip("hping3 not installed")
	}
	top := topology(b)
	const d = 2 * time.Second
	var hping, flood, self float64
	for range b.N {
		cmd := top.Src.Command(context.Background(), "hping3", "--flood", "--icmp", "-q", netns.DstAddr.String())
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		hping += window(b, top, d)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()

		f := newIn(b, top, Config{Count: 1 << 28, Duration: d + time.Second})
		done := make(chan Result)
		go func() {
			res, err := f.Run(context.Background())
			if err != nil {
				b.Error(err)
			}
			done <- res
		}()
		flood += window(b, top, d)
		self += (<-done).Rate
		f.Close()
	}
	n := float64(b.N)
	b.ReportMetric(hping/n, "hping3-pps")
	b.ReportMetric(flood/n, "flood-pps")
	b.ReportMetric(self/n, "flood-sent-pps")
	b.ReportMetric(flood/hping, "flood/hping3")
}

// BenchmarkPaced measures the pacer's achieved rate against its target,
// both as sent (Result.Rate) and as received by the destination veth
// (target: within ±1%). Each iteration is one 2 s flood.
func BenchmarkPaced(b *testing.B) {
	top := topology(b)
	for _, rate := range []int{1_000, 10_000, 50_000, 100_000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			const d = 2 * time.Second
			var sent, recv, errs float64
			var lag time.Duration
			for range b.N {
				f := newIn(b, top, Config{Rate: rate, Count: 1 << 30, Duration: d})
				r0 := rxPackets(b, top)
				res, err := f.Run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond) // the last packets in flight
				recv += float64(rxPackets(b, top)-r0) / res.Elapsed.Seconds()
				sent += res.Rate
				errs += float64(res.Errors)
				lag = max(lag, res.MaxLag)
				f.Close()
			}
			n := float64(b.N)
			b.ReportMetric(sent/n/float64(rate), "sent/target")
			b.ReportMetric(recv/n/float64(rate), "recv/target")
			b.ReportMetric(errs/n, "send-errors")
			b.ReportMetric(float64(lag.Microseconds()), "max-lag-µs")
		})
	}
}
