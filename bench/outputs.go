package bench

import (
	"context"
	"fmt"
	"github.com/imp2/imp2/internal/plots"
	"github.com/imp2/imp2/internal/results"
	"io"
	"os"
	"path/filepath"
)

// toolVersion goes into every results.json.
const toolVersion = "0.1.0"

// guestEnv is set inside the VM (Options.VM), so results say where they ran.
const guestEnv = "IMP2_BENCH_GUEST"

// Files of a result directory: the run, its benchstat export, the trace
// of one sample and the plots.
const (
	ResultsFile = "results.json"
	BenchFile   = "bench.txt"
	TraceFile   = "trace.pcapng.zst"
	PlotsDir    = "plots"
)

// WriteOutputs writes run into the result directory o.Out: results.json,
// the benchstat file and, with o.Plot, the plots; then it prints the
// summary table and the files on stdout.
func WriteOutputs(o Options, run *results.Run, stdout io.Writer) error {
	cfg := &o
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	if err := results.Write(filepath.Join(cfg.Out, ResultsFile), run); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(cfg.Out, BenchFile))
	if err != nil {
		return err
	}
	if err := results.WriteBenchfmt(f, run); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var files []string
	if cfg.Plot {
		if files, err = plots.WriteAll(run, filepath.Join(cfg.Out, PlotsDir)); err != nil {
			return err
		}
	}
	writeSummary(stdout, run)
	fmt.Fprintf(stdout, "\nresults: %s (%s", cfg.Out, ResultsFile)
	if run.Partial {
		fmt.Fprint(stdout, " marked partial")
	}
	fmt.Fprintf(stdout, ", %s", BenchFile)
	if _, err := os.Stat(filepath.Join(cfg.Out, TraceFile)); err == nil {
		fmt.Fprintf(stdout, ", %s", TraceFile)
	}
	fmt.Fprintf(stdout, ", %d plots)\n", len(files))
	return nil
}

// RunAndWrite runs o's sweep (Run) and writes what it measured
// (WriteOutputs), also when it was interrupted: the run returned is then
// marked partial. An Out with an earlier run's results is refused first
// (*OptionError), unless o.Force.
func RunAndWrite(ctx context.Context, o Options, stdout io.Writer) (*results.Run, error) {
	if o.Out == "" {
		o.Out = DefaultOut(o.Source)
	}
	if err := refuseOverwrite(o.Force, o.Out); err != nil {
		return nil, err
	}
	run, err := Run(ctx, o)
	if err == nil {
		err = WriteOutputs(o, run, stdout)
	}
	return run, err
}

// Replot draws the plots of the result directory (or results.json file)
// path again, into its PlotsDir, and returns the files written.
func Replot(path string) ([]string, error) {
	dir := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir = filepath.Dir(path)
	} else {
		path = filepath.Join(dir, ResultsFile)
	}
	run, err := results.Read(path)
	if err != nil {
		return nil, err
	}
	return plots.WriteAll(run, filepath.Join(dir, PlotsDir))
}
