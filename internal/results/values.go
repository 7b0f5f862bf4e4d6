package results

import (
	"os"
	"path/filepath"
	"time"
)

// Values is a run reduced to what a comparison reads: the metric values of
// each sample at each step, and what tells two runs apart. A bench.txt
// holds exactly this (and results.json more), so compare and its plot read
// either file through it.
type Values struct {
	Source      Source
	Environment Environment
	ToolVersion string
	// Params are the sweep's, where known: a bench.txt written before
	// they were exported carries none of the optional ones (nil).
	NoENOBUFS       *bool
	NFLOGQThreshold *int
	StepDuration    *time.Duration
	// Partial is Run.Describe of a partial run ("PARTIAL: …"), or
	// "partial run" for a bench.txt, which only marks it; "" when complete.
	Partial string
	Steps   []StepValues
}

// StepValues is one step: per sample, each metric it measured, by
// Metric.Name.
type StepValues struct {
	Key     StepKey
	Samples []map[string]float64
}

// Values returns the values of the metric name that the step's samples
// measured, in sample order.
func (s *StepValues) Values(name string) []float64 {
	var vs []float64
	for _, sm := range s.Samples {
		if v, ok := sm[name]; ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// ValuesOf reduces run to its metric values, every metric of the table.
func ValuesOf(run *Run) *Values {
	p := run.Params
	v := &Values{Source: run.Source, Environment: run.Environment, ToolVersion: run.ToolVersion,
		NoENOBUFS: &p.NoENOBUFS, NFLOGQThreshold: &p.NFLOGQThreshold, StepDuration: &p.StepDuration}
	if run.Partial {
		v.Partial = run.Describe()
		if v.Partial == "" {
			v.Partial = "partial run"
		}
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		sv := StepValues{Key: st.Key()}
		for j := range st.Samples {
			m := map[string]float64{}
			for _, mt := range Metrics {
				if x, ok := mt.Value(&st.Samples[j]); ok {
					m[mt.Name] = x
				}
			}
			sv.Samples = append(sv.Samples, m)
		}
		v.Steps = append(v.Steps, sv)
	}
	return v
}

// BenchFileName is the benchstat file inside a result directory.
const BenchFileName = "bench.txt"

// Input is what a comparison reads from one path: the run when the path
// is (or holds) a results.json, nil for a bench.txt, and its values.
type Input struct {
	Run    *Run
	Values *Values
}

// ReadInput reads a result directory (its results.json, else its
// bench.txt), a results.json or a bench.txt; a file is told by its
// content, not its name.
func ReadInput(path string) (*Input, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if fi.IsDir() {
		path = inDir(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if looksJSON(data) {
		run, err := decodeBytes(data, path)
		if err != nil {
			return nil, err
		}
		return &Input{Run: run, Values: ValuesOf(run)}, nil
	}
	v, err := DecodeBench(data, path)
	if err != nil {
		return nil, err
	}
	return &Input{Values: v}, nil
}

// inDir is the file of result directory dir a comparison reads:
// results.json, or bench.txt when there is no results.json.
func inDir(dir string) string {
	js := filepath.Join(dir, FileName)
	if _, err := os.Stat(js); err == nil {
		return js
	}
	if txt := filepath.Join(dir, BenchFileName); fileExists(txt) {
		return txt
	}
	return js // its error names the file looked for first
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func looksJSON(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}
