package results

import (
	"fmt"
	"io"
	"strconv"

	"golang.org/x/perf/benchfmt"
)

// BenchName is the benchmark name in the benchstat export; the source goes in
// a file configuration line, so benchstat can put sources side by side
// (-col source) while step names stay the same.
const BenchName = "Imp2"

// WriteBenchfmt writes run in the Go benchmark format, one line per sample:
//
//	BenchmarkImp2/rate=10000/rcvbuf=212992/delay=0 1 9996 achieved-pps 0 drop-ratio ...
//
// with "Unit ... better=" lines so benchstat knows the direction of each
// custom unit. benchstat exits 0 even on a regression; gate with
// internal/compare.
func WriteBenchfmt(w io.Writer, run *Run) error {
	bw := benchfmt.NewWriter(w)
	units := MetricsFor(Exported)
	for _, u := range units {
		md := &benchfmt.UnitMetadata{UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: u.Name, Key: "better"}, OrigUnit: u.Name, Value: u.better()}
		if err := bw.Write(md); err != nil {
			return err
		}
	}
	cfg := []benchfmt.Config{
		{Key: "source", Value: []byte(run.Source.Kind), File: true},
		{Key: "emulated", Value: []byte(strconv.FormatBool(run.Source.Emulated)), File: true},
		{Key: "kernel", Value: []byte(run.Environment.KernelRelease), File: true},
		{Key: "machine", Value: []byte(run.Environment.Machine), File: true},
		{Key: "cpus", Value: []byte(strconv.Itoa(run.Environment.CPUs)), File: true},
		{Key: "in-vm", Value: []byte(strconv.FormatBool(run.Environment.InVM)), File: true},
		{Key: "no-enobufs", Value: []byte(strconv.FormatBool(run.Params.NoENOBUFS)), File: true},
		{Key: "tool", Value: []byte(run.ToolVersion), File: true},
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
