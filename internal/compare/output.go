package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the verdict as a plain-text table that reads in a
// terminal and in a CI log, ending with the exit status and its reason.
func (v *Verdict) WriteTable(w io.Writer) error {
	code, reason := ExitStatus(v, nil)
	fmt.Fprintf(w, "base: %s\nnew:  %s\nalpha %v; medians with their %v%% confidence intervals; a statistical row needs %d samples per side\n",
		v.Base, v.New, v.Alpha, 100*(1-v.Alpha), v.MinSamples)
	if v.CrossSource {
		fmt.Fprintf(w, "cross-source comparison: base is source %s, new is source %s; a difference is between the two paths, not a regression\n", v.BaseSource, v.NewSource)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tMETRIC\tBASE\tNEW\tDELTA\tP\tLIMIT\tVERDICT")
	prev := ""
	for i := range v.Rows {
		r := &v.Rows[i]
		step := r.Step
		if step == prev {
			step = ""
		}
		prev = r.Step
		delta, p, limit := r.shortDelta(), "", "exact"
		if r.P != nil {
			p = fmt.Sprintf("%.3f", *r.P)
		}
		if !r.Exact {
			limit = r.metric.Format(r.Limit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", step, r.Metric, r.side(r.Base), r.side(r.New), delta, p, limit, r.verdict(v.CrossSource))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nexit %d: %s\n", code, reason)
	return err
}

// verdict is the table's last column: "~" for no significant difference
// (as benchstat writes it), a short word for other unchanged rows and for
// too few samples (ExitStatus says the need once), and the status in
// capitals with its reason for the rest; across sources "WORSE" and
// "BETTER", since neither source regressed.
func (r *Row) verdict(crossSource bool) string {
	switch {
	case r.Status == TooFew:
		return "too few"
	case crossSource && r.Status == Worse:
		return "WORSE: " + r.Reason
	case crossSource && r.Status == Better:
		return "BETTER: " + r.Reason
	case r.Status != Same:
		return strings.ToUpper(string(r.Status)) + ": " + r.Reason
	case r.Exact:
		return "equal"
	case r.P == nil || *r.P >= r.alpha:
		return "~"
	case math.Abs(r.Delta) <= r.Limit:
		return "within threshold"
	}
	return "intervals overlap"
}

// side is "12.3µs ±4%" as benchstat writes it.
func (r *Row) side(s Summary) string {
	v := r.metric.Format(s.Median)
	switch {
	case r.Exact:
		return v
	case s.Lo == nil:
		return v + " ±∞"
	case s.Median == 0:
		return v + " ±" + r.metric.Format(max(*s.Hi-s.Median, s.Median-*s.Lo))
	}
	return fmt.Sprintf("%s ±%.0f%%", v, 100*max(*s.Hi-s.Median, s.Median-*s.Lo)/math.Abs(s.Median))
}

// WriteJSON writes the verdict with its exit status, its one word
// ("verdict", Word) and reason.
func (v *Verdict) WriteJSON(w io.Writer) error {
	code, reason := ExitStatus(v, nil)
	return writeJSON(w, struct {
		Word string `json:"verdict"`
		*Verdict
		Exit   int    `json:"exit"`
		Reason string `json:"reason"`
	}{Word(code, v.CrossSource), v, code, reason})
}

// WriteUnusableJSON writes the JSON verdict of a comparison that could
// not be made (err from reading or Compare): verdict "unusable", exit 2,
// and the error, so a -json consumer always gets one object.
func WriteUnusableJSON(w io.Writer, base, new string, err error) error {
	code, reason := ExitStatus(nil, err)
	return writeJSON(w, struct {
		Word  string `json:"verdict"`
		Base  string `json:"base"`
		New   string `json:"new"`
		Exit  int    `json:"exit"`
		Error string `json:"error"`
	}{Word(code, false), base, new, code, reason})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
