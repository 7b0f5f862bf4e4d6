package results

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

// DecodeBench reads a bench.txt that WriteBenchfmt wrote, name prefixing
// every error: its "# key: value" comments (source, tool, step duration)
// and its rows, one sample each. A bench.txt from before the comments
// names its source in a "source: kmod" configuration line instead; both
// are read.
func DecodeBench(data []byte, name string) (*Values, error) {
	v := &Values{}
	if err := v.readComments(data, name); err != nil {
		return nil, err
	}
	byKey := map[StepKey]int{}
	r := benchfmt.NewReader(bytes.NewReader(data), name)
	rows := 0
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			return nil, rec
		case *benchfmt.Result:
			file, line := rec.Pos()
			if err := v.fromConfig(rec); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, line, err)
			}
			k, err := parseStepName(rec.Name)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, line, err)
			}
			i, ok := byKey[k]
			if !ok {
				i = len(v.Steps)
				byKey[k] = i
				v.Steps = append(v.Steps, StepValues{Key: k})
			}
			v.Steps[i].Samples = append(v.Steps[i].Samples, sampleValues(rec))
			rows++
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	switch {
	case rows == 0:
		return nil, fmt.Errorf("%s: no Benchmark%s rows; not an imp2-bench bench.txt", name, BenchName)
	case v.Source.Kind == "":
		return nil, fmt.Errorf("%s: no source (a \"# %s:\" comment or a \"source:\" line)", name, commentSource)
	}
	return v, nil
}

// readComments reads the "# key: value" header lines.
func (v *Values) readComments(data []byte, name string) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		key, val, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), ": ")
		if !ok || !strings.HasPrefix(sc.Text(), "# ") {
			continue
		}
		var err error
		switch key {
		case commentSource:
			v.Source.Kind = val
		case commentEmulated:
			v.Source.Emulated, err = strconv.ParseBool(val)
		case commentTool:
			v.ToolVersion = val
		case commentStepDuration:
			var d time.Duration
			d, err = time.ParseDuration(val)
			v.StepDuration = &d
		case commentQThreshold:
			var n int
			n, err = strconv.Atoi(val)
			v.NFLOGQThreshold = &n
		}
		if err != nil {
			return fmt.Errorf("%s:%d: # %s: %q: %v", name, line, key, val, err)
		}
	}
	return sc.Err()
}

// fromConfig takes the run's description from a row's configuration
// lines; they must not change within the file.
func (v *Values) fromConfig(rec *benchfmt.Result) error {
	get := rec.GetConfig
	env := Environment{KernelRelease: get("kernel"), Machine: get("machine")}
	var err error
	if s := get("cpus"); s != "" {
		if env.CPUs, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("cpus: %q: %v", s, err)
		}
	}
	env.InVM = get("in-vm") == "true"
	if s := get("no-enobufs"); s != "" {
		b := s == "true"
		v.NoENOBUFS = &b
	}
	if get("partial") == "true" {
		v.Partial = "partial run"
	}
	if s := get("source"); s != "" { // a bench.txt written before the comments
		v.Source.Kind = s
		v.Source.Emulated = get("emulated") == "true"
	}
	if s := get("tool"); s != "" {
		v.ToolVersion = s
	}
	if v.Environment != (Environment{}) && v.Environment != env {
		return fmt.Errorf("configuration changes within the file (%+v, then %+v); one bench.txt is one run", v.Environment, env)
	}
	v.Environment = env
	return nil
}

// sampleValues is one row's values by unit, for the metrics of the table.
func sampleValues(rec *benchfmt.Result) map[string]float64 {
	m := map[string]float64{}
	for _, val := range rec.Values {
		u, x := val.Unit, val.Value
		if val.OrigUnit != "" {
			u, x = val.OrigUnit, val.OrigValue
		}
		if slices.ContainsFunc(Metrics, func(mt Metric) bool { return mt.Name == u }) {
			m[u] = x
		}
	}
	return m
}
