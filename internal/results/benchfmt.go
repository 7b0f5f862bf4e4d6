package results

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/perf/benchfmt"
)

// BenchName is the benchmark name of every row of the benchstat export,
// whatever the source: BenchmarkImp2/rate=…/rcvbuf=…/delay=….
//
// Why not BenchmarkImp2, BenchmarkNFLOG, BenchmarkEmu: benchstat (by
// default -table .config -row .fullname -col .file) puts two files side
// by side, with deltas, only where the rows' full names and the files'
// "key: value" configuration lines are equal. A source in the name makes
// each source its own rows with one column each; a source in a
// configuration line (as before, "source: kmod") makes each its own
// table, which is why `benchstat default/bench.txt nflog/bench.txt` needed
// -ignore source. Naming rows by source and giving deltas between
// sources cannot both hold, so the deltas win: the source, the tool
// version and the step duration are in "# key: value" comment lines,
// which benchstat skips and ReadBench reads. Configuration lines carry
// only what makes numbers incomparable (kernel, machine, CPUs, the VM,
// NETLINK_NO_ENOBUFS, a partial run), so benchstat keeps those apart.
const BenchName = "Imp2"

// Comment keys of the bench.txt header.
const (
	commentSource       = "source"
	commentEmulated     = "emulated"
	commentTool         = "tool"
	commentStepDuration = "step-duration"
	commentQThreshold   = "nflog-qthresh"
)

// WriteBenchfmt writes run in the Go benchmark format, one line per sample:
//
//	# source: nflog
//	BenchmarkImp2/rate=10000/rcvbuf=212992/delay=0 1 9996 achieved-pps 0 drop-ratio ...
//
// with "Unit ... better=" lines so benchstat knows the direction of each
// custom unit (BenchName says what goes where). benchstat exits 0 even on
// a regression; gate with internal/compare.
func WriteBenchfmt(w io.Writer, run *Run) error {
	fmt.Fprintf(w, "# imp2-bench results of source %s; benchstat skips these comment lines, imp2-bench compare reads them\n", run.Source.Kind)
	header := [][2]string{
		{commentSource, run.Source.Kind},
		{commentEmulated, strconv.FormatBool(run.Source.Emulated)},
		{commentTool, run.ToolVersion},
		{commentStepDuration, run.Params.StepDuration.String()},
	}
	if run.Source.Kind == SourceNFLOG { // only nflog has a queue threshold (Params.NFLOGQThreshold)
		header = append(header, [2]string{commentQThreshold, strconv.Itoa(run.Params.NFLOGQThreshold)})
	}
	for _, kv := range header {
		if _, err := fmt.Fprintf(w, "# %s: %s\n", kv[0], kv[1]); err != nil {
			return err
		}
	}
	bw := benchfmt.NewWriter(w)
	units := MetricsFor(Exported)
	for _, u := range units {
		md := &benchfmt.UnitMetadata{UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: u.Name, Key: "better"}, OrigUnit: u.Name, Value: u.better()}
		if err := bw.Write(md); err != nil {
			return err
		}
	}
	cfg := []benchfmt.Config{
		{Key: "kernel", Value: []byte(run.Environment.KernelRelease), File: true},
		{Key: "machine", Value: []byte(run.Environment.Machine), File: true},
		{Key: "cpus", Value: []byte(strconv.Itoa(run.Environment.CPUs)), File: true},
		{Key: "in-vm", Value: []byte(strconv.FormatBool(run.Environment.InVM)), File: true},
		{Key: "no-enobufs", Value: []byte(strconv.FormatBool(run.Params.NoENOBUFS)), File: true},
	}
	if run.Partial {
		// benchstat keeps runs with other configurations apart, so a
		// partial run is never merged with a complete one unnoticed.
		cfg = append(cfg, benchfmt.Config{Key: "partial", Value: []byte("true"), File: true})
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		for j := range st.Samples {
			res := &benchfmt.Result{Config: cfg, Name: benchfmt.Name(fmt.Sprintf("%s/%s", BenchName, st.Key())), Iters: 1}
			for _, u := range units {
				if v, ok := u.Value(&st.Samples[j]); ok {
					res.Values = append(res.Values, benchfmt.Value{Value: v, Unit: u.Name})
				}
			}
			if err := bw.Write(res); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseStepName reads "Imp2/rate=1000/rcvbuf=212992/delay=20us".
func parseStepName(name benchfmt.Name) (StepKey, error) {
	base, parts := name.Parts()
	var k StepKey
	if string(base) != BenchName {
		return k, fmt.Errorf("benchmark %q is not imp2-bench's (Benchmark%s/rate=…/rcvbuf=…/delay=…)", name, BenchName)
	}
	seen := map[string]bool{}
	for _, p := range parts {
		key, val, ok := cutPart(string(p))
		if !ok {
			return k, fmt.Errorf("benchmark %q: part %q is not /key=value", name, p)
		}
		var err error
		switch key {
		case "rate":
			k.RatePPS, err = strconv.Atoi(val)
		case "rcvbuf":
			k.RcvBuf, err = strconv.Atoi(val)
		case "delay":
			k.ConsumerDelay, err = parseDelay(val)
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return k, fmt.Errorf("benchmark %q: %s=%s: %v", name, key, val, err)
		}
		seen[key] = true
	}
	for _, key := range []string{"rate", "rcvbuf", "delay"} {
		if !seen[key] {
			return k, fmt.Errorf("benchmark %q has no %s=", name, key)
		}
	}
	return k, nil
}

func cutPart(p string) (key, val string, ok bool) {
	if len(p) < 2 || p[0] != '/' {
		return "", "", false
	}
	for i := 1; i < len(p); i++ {
		if p[i] == '=' {
			return p[1:i], p[i+1:], i > 1
		}
	}
	return "", "", false
}

// parseDelay reads FormatDelay's "0" or "20us".
func parseDelay(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
