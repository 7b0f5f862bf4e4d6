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
	// CrossSource compares runs of different sources (compare.Config's).
	CrossSource bool
}

// Load reads the config file (if any) and applies Alpha over it. Its
// errors wrap compare.ErrUnusable: the config is the verdict's input.
func (o CompareOptions) Load() (compare.Config, error) {
	if o.Alpha != 0 && !(o.Alpha > 0 && o.Alpha < 0.5) { // a bad option, not bad input
		return compare.DefaultConfig(), optErr("Alpha", " %g: want 0 < alpha < 0.5", o.Alpha)
	}
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
// stays one JSON document. A plot asked for and not drawn is
// compare.ExitPlotFailed, after the verdict is written: a command that
// was to leave a figure and left none has failed.
func (o CompareOptions) WriteVerdict(v *compare.Verdict, base, new *results.Values, stdout, stderr io.Writer) (int, error) {
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
		files, err := plots.WriteComparison(base, new, v.Base, v.New, o.PlotDir)
		if err != nil {
			fmt.Fprintf(stderr, "exit %d: no comparison plot: %v (the verdict above stands: exit %d)\n", compare.ExitPlotFailed, err, code)
			return compare.ExitPlotFailed, nil
		}
		fmt.Fprintf(stderr, "plots: %s\n", strings.Join(files, ", "))
	}
	return code, nil
}

// WriteUnusable writes the verdict of a comparison that could not be
// made: with JSON the object compare.WriteUnusableJSON writes, so a
// consumer of -json always gets a verdict; without, nothing (the caller
// reports err on stderr). An option out of range (*OptionError) is bad
// usage, no verdict: nothing either.
func (o CompareOptions) WriteUnusable(base, new string, err error, stdout io.Writer) error {
	var bad *OptionError
	if !o.JSON || errors.As(err, &bad) {
		return nil
	}
	return compare.WriteUnusableJSON(stdout, base, new, err)
}

// Compared is a comparison of two inputs (results.ReadInput): the
// verdict and what it was made of.
type Compared struct {
	Verdict   *compare.Verdict
	Base, New *results.Input
}

// CompareFiles compares the inputs base and new, each a result directory,
// a results.json or a bench.txt (any mix), named by their paths; runs of
// different sources only with o.CrossSource. Every error is the input's
// and wraps compare.ErrUnusable, but an option out of range
// (*OptionError).
func CompareFiles(base, new string, o CompareOptions) (*Compared, error) {
	cfg, err := o.Load()
	if err != nil {
		return nil, err
	}
	cfg.CrossSource = o.CrossSource
	c := &Compared{}
	if c.Base, err = results.ReadInput(base); err != nil {
		err = fmt.Errorf("base: %w", err)
	} else if c.New, err = results.ReadInput(new); err != nil {
		err = fmt.Errorf("new: %w", err)
	} else {
		c.Verdict, err = compare.CompareValues(c.Base.Values, c.New.Values, base, new, cfg)
	}
	if err != nil && !errors.Is(err, compare.ErrUnusable) {
		err = fmt.Errorf("%w: %v", compare.ErrUnusable, err)
	}
	return c, err
}
