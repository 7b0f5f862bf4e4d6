package results_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/results/resultstest"
)

// TestDecodeBenchRoundTrip: what WriteBenchfmt writes, DecodeBench reads
// back as the run's values, every metric of every sample.
func TestDecodeBenchRoundTrip(t *testing.T) {
	o := resultstest.Default()
	o.Events, o.Source = 500, results.SourceNFLOG
	run := resultstest.Run(o)
	run.Params.NFLOGQThreshold = 1
	var buf bytes.Buffer
	if err := results.WriteBenchfmt(&buf, run); err != nil {
		t.Fatal(err)
	}
	got, err := results.DecodeBench(buf.Bytes(), "bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := results.ValuesOf(run)
	if !reflect.DeepEqual(got.Steps, want.Steps) {
		t.Errorf("steps differ after a bench.txt round trip:\ngot  %v\nwant %v", got.Steps[0], want.Steps[0])
	}
	if got.Source != want.Source || got.ToolVersion != want.ToolVersion || *got.StepDuration != *want.StepDuration ||
		*got.NFLOGQThreshold != 1 || *got.NoENOBUFS != *want.NoENOBUFS || got.Environment.KernelRelease != run.Environment.KernelRelease {
		t.Errorf("header not read back: %+v", got)
	}
	if !strings.Contains(buf.String(), "\n# source: nflog\n") || strings.Contains(buf.String(), "\nsource:") {
		t.Errorf("the source is not (only) in a comment line:\n%.600s", buf.String())
	}
}

// TestBenchQThresholdOnlyNFLOG: bench.txt gives nflog-qthresh for an
// nflog run only; another source has no queue threshold to say (an emu
// run's said "nflog-qthresh: 0"), and reads back without one.
func TestBenchQThresholdOnlyNFLOG(t *testing.T) {
	for _, src := range []string{results.SourceNFLOG, results.SourceEmu, results.SourceKmod} {
		o := resultstest.Default()
		o.Events, o.Source = 100, src
		var buf bytes.Buffer
		if err := results.WriteBenchfmt(&buf, resultstest.Run(o)); err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(buf.String(), "\n# nflog-qthresh: ")
		if has != (src == results.SourceNFLOG) {
			t.Errorf("source %s: nflog-qthresh line %v, want %v:\n%.400s", src, has, src == results.SourceNFLOG, buf.String())
		}
		got, err := results.DecodeBench(buf.Bytes(), "bench.txt")
		if err != nil {
			t.Fatal(err)
		}
		if (got.NFLOGQThreshold != nil) != (src == results.SourceNFLOG) {
			t.Errorf("source %s: read back qthresh %v", src, got.NFLOGQThreshold)
		}
	}
}

// TestDecodeBenchOld reads a bench.txt as committed before the source
// moved to a comment ("source: kmod" configuration, no burst-held).
func TestDecodeBenchOld(t *testing.T) {
	in, err := results.ReadInput(filepath.Join("testdata", "bench-v0.1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	v := in.Values
	if in.Run != nil || v.Source.Kind != results.SourceKmod || v.ToolVersion != "0.1.0" || v.Environment.KernelRelease != "6.1.0-56-amd64" || v.StepDuration != nil {
		t.Errorf("header %+v", v)
	}
	if len(v.Steps) != 2 || len(v.Steps[0].Samples) != 6 || v.Steps[1].Key.RcvBuf != 16384 {
		t.Fatalf("steps %+v", v.Steps)
	}
	if p50 := v.Steps[0].Values("p50-unicast-ns"); len(p50) != 6 || p50[0] != 367103 {
		t.Errorf("p50-unicast-ns = %v", p50)
	}
}

func TestDecodeBenchErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "# source: kmod\n", "x.txt: no BenchmarkImp2 rows; not an imp2-bench bench.txt"},
		{"go test output", "# source: kmod\nBenchmarkFoo-8 1 3 ns/op\n", `x.txt:2: benchmark "Foo-8" is not imp2-bench's`},
		{"no delay", "# source: kmod\nBenchmarkImp2/rate=1/rcvbuf=2 1 3 drops\n", `x.txt:2: benchmark "Imp2/rate=1/rcvbuf=2" has no delay=`},
		{"bad rate", "# source: kmod\nBenchmarkImp2/rate=x/rcvbuf=2/delay=0 1 3 drops\n", `rate=x: strconv.Atoi`},
		{"no source", "BenchmarkImp2/rate=1/rcvbuf=2/delay=0 1 3 drops\n", `x.txt: no source`},
		{"bad duration", "# step-duration: soon\n", `x.txt:1: # step-duration: "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := results.DecodeBench([]byte(tc.text), "x.txt")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestBenchstatAcrossSources runs benchstat (go.mod's tool directive) on
// bench.txt files of two sources: one table per unit, with a delta
// column, and no -ignore needed.
func TestBenchstatAcrossSources(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, src := range []string{results.SourceKmod, results.SourceNFLOG} {
		o := resultstest.Default()
		o.Events, o.Source, o.Seed = 500, src, uint64(i+1)
		o.ExtraCost = time.Duration(i) * 3 * time.Microsecond
		var buf bytes.Buffer
		if err := results.WriteBenchfmt(&buf, resultstest.Run(o)); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, src+".txt")
		if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	cmd := exec.Command("go", append([]string{"tool", "benchstat"}, files...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool benchstat: %v\n%s", err, out)
	}
	text := string(out)
	// benchstat tidies the unit p99-unicast-ns into p99-unicast-sec: one
	// header line names it, in both columns, the second with "vs base".
	tables, withDelta := 0, 0
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "p99-unicast-") && !strings.HasPrefix(line, "Imp2/") {
			tables++
			if strings.Count(line, "p99-unicast-") == 2 && strings.Contains(line, "vs base") {
				withDelta++
			}
		}
	}
	if tables != 1 || withDelta != 1 {
		t.Fatalf("benchstat made %d p99-unicast tables (%d with a \"vs base\" delta column), want one with:\n%s", tables, withDelta, text)
	}
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "Imp2/rate=") {
			rows++
			if !strings.Contains(line, "%") && !strings.Contains(line, "~") {
				t.Errorf("row without a delta: %s", line)
			}
		}
	}
	if rows == 0 {
		t.Errorf("no Imp2/ rows:\n%s", text)
	}
	t.Logf("%d rows with deltas; head:\n%.1500s", rows, text)
}
