package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/plots"
	"github.com/imp2/imp2/internal/results"
)

// CompareOptions say how a verdict is judged and written; compare, ab and
// the gate share them.
type CompareOptions struct {
	// Alpha is the U test's significance level over the config's (0:
	// the config's, by default 0.05).
	Alpha float64
	// Config is a JSON file of thresholds over compare.DefaultConfig
	// ("": none).
	Config string
	// JSON writes the verdict as one JSON document instead of a table.
	JSON bool
	// PlotDir, when set, receives base and new drawn side by side.
	PlotDir string
}

// Load reads the config file (if any) and applies Alpha over it. Its
// errors wrap compare.ErrUnusable: the config is the verdict's input.
func (o CompareOptions) Load() (compare.Config, error) {
	cfg, err := o.load()
	if err != nil {
		err = fmt.Errorf("%w: %v", compare.ErrUnusable, err)
	}
	return cfg, err
}

func (o CompareOptions) load() (compare.Config, error) {
	cfg := compare.DefaultConfig()
	if o.Config != "" {
		f, err := os.Open(o.Config)
		if err != nil {
			return cfg, err
		}
		defer f.Close()
		if cfg, err = compare.ReadConfig(f); err != nil {
			return cfg, fmt.Errorf("%s: %w", o.Config, err)
		}
	}
	if o.Alpha != 0 {
		cfg.Alpha = o.Alpha
	}
	return cfg, cfg.Validate()
}

// WriteVerdict writes v as a table (or JSON) on stdout and the plot, and
// returns the verdict's exit status (compare.ExitStatus). With JSON the
// one-line reason also goes to stderr, so a CI log shows it while stdout
// stays one JSON document. A plot that cannot be drawn is a line on
// stderr, not another status: the verdict stands.
func (o CompareOptions) WriteVerdict(v *compare.Verdict, base, new *results.Run, stdout, stderr io.Writer) (int, error) {
	code, reason := compare.ExitStatus(v, nil)
	var err error
	if o.JSON {
		err = v.WriteJSON(stdout)
		fmt.Fprintf(stderr, "exit %d: %s\n", code, reason)
	} else {
		err = v.WriteTable(stdout)
	}
	if err != nil {
		return code, err
	}
	if o.PlotDir != "" {
		if files, err := plots.WriteComparison(base, new, v.Base, v.New, o.PlotDir); err != nil {
			fmt.Fprintln(stderr, "no comparison plot:", err)
		} else {
			fmt.Fprintf(stderr, "plots: %s\n", strings.Join(files, ", "))
		}
	}
	return code, nil
}

// CompareFiles compares the runs in the result directories (or
// results.json files) base and new, named by their paths. Every error is
// the input's and wraps compare.ErrUnusable.
func CompareFiles(base, new string, o CompareOptions) (v *compare.Verdict, b, n *results.Run, err error) {
	cfg, err := o.Load()
	if err != nil {
		return nil, nil, nil, err
	}
	if b, err = results.Read(base); err == nil {
		if n, err = results.Read(new); err == nil {
			v, err = compare.Compare(b, n, base, new, cfg)
		}
	}
	if err != nil && !errors.Is(err, compare.ErrUnusable) {
		err = fmt.Errorf("%w: %v", compare.ErrUnusable, err)
	}
	return v, b, n, err
}
