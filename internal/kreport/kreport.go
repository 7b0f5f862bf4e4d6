// Package kreport is the cross-kernel report: several imp2-bench result
// directories, one per kernel (imp2-bench run -vm -kernel K -out DIR, or
// one shard of a CI matrix), read back and set side by side as one table,
// written as Markdown and JSON. The shards may also be several sources on
// one kernel (the module, NFLOG and the BPF peer on 6.12): then a column
// is a kernel and a source.
//
// Each shard names its kernel itself (results.json's
// environment.kernel_release, taken inside the guest), so shards can come
// from anywhere: one machine's `imp2-bench matrix` or the artifacts of
// parallel CI jobs. The figures of the same report are internal/plots'
// WriteKernels.
package kreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/imp2/imp2/internal/compare"
	"github.com/imp2/imp2/internal/plots"
	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/vm"
)

// Schema names the JSON layout of Report; a change that breaks readers
// bumps its number.
const Schema = "imp2-kreport/1"

// File names of the report inside its directory.
const (
	JSONFile     = "kernels.json"
	MarkdownFile = "kernels.md"
)

// Shard is one kernel's result directory.
type Shard struct {
	Dir string
	Run *results.Run
}

// Name is how the report calls the shard's kernel: its matrix name
// (internal/vm/matrix.go) when the release is one of the matrix's, the
// release otherwise.
func (s *Shard) Name() string {
	rel := s.Run.Environment.KernelRelease
	for _, m := range vm.Matrix {
		if m.Release == rel {
			return m.Name
		}
	}
	return rel
}

// Load reads the result directory (or results.json) of each shard. It
// refuses a shard it cannot read, one without a kernel release, and two
// shards of the same kernel and source (the report has one column per
// kernel and source); each error names the shard, and not this package:
// it is a command's one line (imp2-bench merge: …).
func Load(dirs []string) ([]Shard, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no result directories")
	}
	var shards []Shard
	seen := map[string]string{}
	for _, d := range dirs {
		run, err := results.Read(d)
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", d, err)
		}
		s := Shard{Dir: d, Run: run}
		rel := run.Environment.KernelRelease
		if rel == "" {
			return nil, fmt.Errorf("shard %s: environment.kernel_release is empty: the shard does not say which kernel it ran on", d)
		}
		key := rel + " " + run.Source.Kind
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("shards %s and %s both ran source %s on kernel %s; give one result directory per kernel and source", other, d, run.Source.Kind, rel)
		}
		seen[key] = d
		shards = append(shards, s)
	}
	return shards, nil
}

// Report is the cross-kernel table. Kernels keep the order of the shards;
// every row has one cell per kernel in that order, nil where the kernel's
// sweep lacks the step.
type Report struct {
	Schema string `json:"schema"`
	// Emulation is true when any shard is an emulation: one that ran in
	// the qemu harness (its behaviour, truesize, burst capacity and drops,
	// is the kernel's, its timings, rates and latencies, are software
	// emulation's) or one of the user-space emulator (source emu: neither
	// its timings nor its drops are the kernel path's).
	Emulation bool     `json:"emulation"`
	Note      string   `json:"note"`
	Kernels   []Kernel `json:"kernels"`
	Rows      []Row    `json:"rows"`
}

// Kernel is one shard's kernel and what holds for it across the sweep.
type Kernel struct {
	// Name is the kernel's (Shard.Name), followed by the source when the
	// report holds more than one.
	Name    string `json:"name"`
	Release string `json:"kernel_release"`
	Dir     string `json:"dir"`
	Source  string `json:"source"`
	InVM    bool   `json:"in_vm"`
	// Emulated is the shard's source.emulated: the user-space emulator
	// (source emu) stood in for the kernel's hook.
	Emulated bool   `json:"emulated"`
	CPUs     int    `json:"cpus"`
	Hostname string `json:"hostname"`
	Partial  bool   `json:"partial,omitempty"`
	// Burst is the burst probe at each receive buffer of the sweep,
	// smallest first; empty when the sweep did not probe.
	Burst []Burst `json:"burst_held,omitempty"`
	// ConsumerNsPerEvent is the consumer thread's CPU time per event
	// draining a queued burst with latency recording on (the run's
	// consumer_overhead "with"); 0 when the run did not measure it.
	ConsumerNsPerEvent float64 `json:"consumer_cpu_ns_per_event,omitempty"`
}

// Burst is what a consumer that does not read holds at one receive buffer.
type Burst struct {
	RcvBuf int `json:"rcvbuf_bytes"`
	// BufferBytes is the size of the buffer the samples had
	// (results.Queue.RcvBuf): RcvBuf for a socket, the ring's size (the
	// next power of two) for the BPF peer.
	BufferBytes int `json:"buffer_bytes"`
	// HeldMin and HeldMax are the fewest and most events held over every
	// sample at this buffer: the kernel makes it rcvbuf/truesize, so they
	// are equal unless something else shared the queue.
	HeldMin int64 `json:"held_min"`
	HeldMax int64 `json:"held_max"`
	// BytesPerEvent is BufferBytes/HeldMax, the receive-buffer charge of one
	// event: the event's truesize to within one event's share of the
	// buffer (a queue admits an event while it is not yet over the limit).
	BytesPerEvent float64 `json:"bytes_per_event"`
	// HeldPerMiB is HeldMax scaled to a MiB of buffer, the measure that
	// compares sources whose buffers differ in kind (a socket's receive
	// buffer, a ring).
	HeldPerMiB float64 `json:"held_per_mib"`
}

// Row is one step of the sweep on every kernel.
type Row struct {
	RatePPS       int           `json:"rate_pps"`
	RcvBuf        int           `json:"rcvbuf_bytes"`
	ConsumerDelay time.Duration `json:"consumer_delay_ns"`
	Cells         []*Cell       `json:"cells"`
}

// Cell is one kernel's samples of one step, summarised.
type Cell struct {
	Samples int `json:"samples"`
	// AchievedPPS (what the generator sent), DeliveredPPS (what reached
	// the consumer) and DropRatio are medians over the samples; Dropped is
	// their total (results.Sample.Dropped: the largest accounting).
	AchievedPPS  float64 `json:"achieved_pps"`
	DeliveredPPS float64 `json:"delivered_pps"`
	DropRatio    float64 `json:"drop_ratio"`
	Dropped      int64   `json:"dropped"`
	// Unicast and EndToEnd are the percentiles of every sample's
	// histogram merged: each event counts once, whichever sample it was in.
	Unicast  *Percentiles `json:"unicast_latency,omitempty"`
	EndToEnd *Percentiles `json:"e2e_latency,omitempty"`
}

// Percentiles of a latency in nanoseconds.
type Percentiles struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50_ns"`
	P99   int64 `json:"p99_ns"`
	P999  int64 `json:"p99_9_ns"`
	Max   int64 `json:"max_ns"`
}

// Build sets the shards side by side.
func Build(shards []Shard) (*Report, error) {
	rep := &Report{Schema: Schema}
	var keys []results.StepKey
	multiSource := slices.ContainsFunc(shards, func(s Shard) bool { return s.Run.Source.Kind != shards[0].Run.Source.Kind })
	for _, s := range shards {
		env := s.Run.Environment
		k := Kernel{Name: s.Name(), Release: env.KernelRelease, Dir: s.Dir, Source: s.Run.Source.Kind,
			InVM: env.InVM, Emulated: s.Run.Source.Emulated, CPUs: env.CPUs, Hostname: env.Hostname, Partial: s.Run.Partial}
		rep.Emulation = rep.Emulation || k.InVM || k.Emulated
		if multiSource {
			k.Name += " " + k.Source
		}
		if k.Emulated {
			k.Name += " (emulation)"
		}
		k.Burst = bursts(s.Run)
		if o := s.Run.Overhead; o != nil {
			k.ConsumerNsPerEvent = o.With
		}
		rep.Kernels = append(rep.Kernels, k)
		for i := range s.Run.Steps {
			if key := s.Run.Steps[i].Key(); !slices.Contains(keys, key) {
				keys = append(keys, key)
			}
		}
	}
	slices.SortFunc(keys, func(a, b results.StepKey) int {
		if a.RcvBuf != b.RcvBuf {
			return a.RcvBuf - b.RcvBuf
		}
		if a.ConsumerDelay != b.ConsumerDelay {
			return int(a.ConsumerDelay - b.ConsumerDelay)
		}
		return a.RatePPS - b.RatePPS
	})
	for _, key := range keys {
		row := Row{RatePPS: key.RatePPS, RcvBuf: key.RcvBuf, ConsumerDelay: key.ConsumerDelay}
		for _, s := range shards {
			c, err := cellOf(s.Run, key)
			if err != nil {
				return nil, fmt.Errorf("shard %s: step %s: %w", s.Dir, key, err)
			}
			row.Cells = append(row.Cells, c)
		}
		rep.Rows = append(rep.Rows, row)
	}
	rep.Note = note(rep.Kernels)
	return rep, nil
}

// note is the report's caveat: which of its columns are emulation, and of
// what. A qemu guest's kernel is real and its clock is not; the user-space
// emulator is neither the kernel's hook nor its drops.
func note(ks []Kernel) string {
	inVM := slices.ContainsFunc(ks, func(k Kernel) bool { return k.InVM })
	var emu []string
	for _, k := range ks {
		if k.Emulated {
			emu = append(emu, k.Name)
		}
	}
	var parts []string
	if inVM {
		parts = append(parts, "emulation: the sweeps ran under qemu's software CPU (TCG); truesize, burst capacity and drop accounting are the kernels' own, rates and latencies are emulation timings, comparable only between kernels booted the same way")
	}
	if len(emu) > 0 {
		parts = append(parts, "emulation: "+strings.Join(emu, ", ")+" ran the user-space emulator (source emu) in place of the kernel's hook: no kernel overrun, ENOBUFS or socket drops, and its rates and latencies are not the kernel path's")
	}
	if !inVM {
		parts = append(parts, "measured on the hosts named per kernel; timings compare only within one machine")
	}
	return strings.Join(parts, "; ")
}

func bursts(run *results.Run) []Burst {
	byBuf := map[int]*Burst{}
	for i := range run.Steps {
		st := &run.Steps[i]
		for j := range st.Samples {
			h := st.Samples[j].BurstHeld
			if h == nil {
				continue
			}
			b := byBuf[st.RcvBuf]
			if b == nil {
				b = &Burst{RcvBuf: st.RcvBuf, BufferBytes: st.RcvBuf, HeldMin: *h, HeldMax: *h}
				byBuf[st.RcvBuf] = b
			}
			b.HeldMin, b.HeldMax = min(b.HeldMin, *h), max(b.HeldMax, *h)
			if q := int(st.Samples[j].Queue.RcvBuf); q > 0 {
				b.BufferBytes = q
			}
		}
	}
	var out []Burst
	for _, b := range byBuf {
		if b.HeldMax > 0 {
			b.BytesPerEvent = float64(b.BufferBytes) / float64(b.HeldMax)
			b.HeldPerMiB = float64(b.HeldMax) * (1 << 20) / float64(b.BufferBytes)
		}
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Burst) int { return a.RcvBuf - b.RcvBuf })
	return out
}

// cellOf summarises run's step key; nil when run has no sample of it.
func cellOf(run *results.Run, key results.StepKey) (*Cell, error) {
	i := slices.IndexFunc(run.Steps, func(st results.Step) bool { return st.Key() == key })
	if i < 0 || len(run.Steps[i].Samples) == 0 {
		return nil, nil
	}
	samples := run.Steps[i].Samples
	c := &Cell{Samples: len(samples)}
	var rates, delivered, ratios []float64
	var uni, e2e []*results.Latency
	for j := range samples {
		sm := &samples[j]
		rates = append(rates, sm.AchievedPPS)
		if sm.Duration > 0 {
			delivered = append(delivered, float64(sm.Received)/sm.Duration.Seconds())
		}
		ratios = append(ratios, sm.DropRatio())
		c.Dropped += sm.Dropped()
		uni, e2e = append(uni, sm.Unicast), append(e2e, sm.EndToEnd)
	}
	c.AchievedPPS, c.DeliveredPPS, c.DropRatio = median(rates), median(delivered), median(ratios)
	var err error
	if c.Unicast, err = merged(uni); err != nil {
		return nil, fmt.Errorf("unicast_latency: %w", err)
	}
	if c.EndToEnd, err = merged(e2e); err != nil {
		return nil, fmt.Errorf("e2e_latency: %w", err)
	}
	return c, nil
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// merged is the percentiles of the histograms ls merged; nil when none
// holds an event.
func merged(ls []*results.Latency) (*Percentiles, error) {
	var all *hdrhistogram.Histogram
	for _, l := range ls {
		if l == nil || l.Count == 0 {
			continue
		}
		h, err := l.Histogram()
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = h
		} else {
			all.Merge(h)
		}
	}
	if all == nil {
		return nil, nil
	}
	return &Percentiles{Count: all.TotalCount(), P50: all.ValueAtQuantile(50), P99: all.ValueAtQuantile(99),
		P999: all.ValueAtQuantile(99.9), Max: all.Max()}, nil
}

// Merge is the whole report from result directories: it reads the shards
// (Load), writes kernels.json and kernels.md (Write) and the figures
// (plots.WriteKernels) into out, and returns the paths written. A bad
// shard stops it before anything is written.
func Merge(dirs []string, out string) (*Report, []string, error) {
	shards, err := Load(dirs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", compare.ErrUnusable, err)
	}
	rep, err := Build(shards)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", compare.ErrUnusable, err)
	}
	paths, err := Write(out, rep)
	if err != nil {
		return rep, paths, err
	}
	runs, names := make([]*results.Run, len(shards)), make([]string, len(shards))
	for i := range shards {
		runs[i], names[i] = shards[i].Run, rep.Kernels[i].Name
	}
	figs, err := plots.WriteKernels(runs, names, out)
	return rep, append(paths, figs...), err
}

// WriteJSON writes rep indented.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteMarkdown writes rep as Markdown: the kernels, their burst probe,
// then every step with one line per kernel.
func WriteMarkdown(w io.Writer, rep *Report) error {
	var b strings.Builder
	title := "Cross-kernel report"
	if slices.ContainsFunc(rep.Kernels, func(k Kernel) bool { return k.Source != rep.Kernels[0].Source }) {
		title = "Sources side by side"
	}
	if rep.Emulation {
		title += " (emulation)"
	}
	fmt.Fprintf(&b, "# %s\n\n%s.\n\n", title, capitalise(rep.Note))
	b.WriteString("## Kernels\n\n| kernel | release | source | where | partial | result directory | consumer CPU per event |\n|---|---|---|---|---|---|---|\n")
	for _, k := range rep.Kernels {
		where := fmt.Sprintf("%s, %d CPUs", k.Hostname, k.CPUs)
		if k.InVM {
			where = fmt.Sprintf("qemu TCG guest, %d CPUs", k.CPUs)
		}
		if k.Emulated {
			where += ", user-space emulation"
		}
		cpu := "—"
		if k.ConsumerNsPerEvent > 0 {
			cpu = fmt.Sprintf("%.0f ns", k.ConsumerNsPerEvent)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", k.Name, k.Release, k.Source, where, yesNo(k.Partial), k.Dir, cpu)
	}
	bufs := burstBufs(rep)
	if len(bufs) > 0 {
		b.WriteString("\n## Burst held and truesize\n\nEvents a consumer that does not read holds before the first drop, per receive buffer (exact: rcvbuf/truesize), the buffer's bytes per held event (≈ truesize) and the events a MiB of such buffer holds.\n\n| kernel |")
		for _, rb := range bufs {
			fmt.Fprintf(&b, " held at %s |", bytesLabel(rb))
		}
		b.WriteString(" bytes per event | held per MiB |\n|---|" + strings.Repeat("---|", len(bufs)+2) + "\n")
		for _, k := range rep.Kernels {
			fmt.Fprintf(&b, "| %s |", k.Name)
			var per, perMiB []string
			for _, rb := range bufs {
				i := slices.IndexFunc(k.Burst, func(x Burst) bool { return x.RcvBuf == rb })
				if i < 0 {
					b.WriteString(" — |")
					continue
				}
				x := k.Burst[i]
				if x.HeldMin == x.HeldMax {
					fmt.Fprintf(&b, " %d |", x.HeldMax)
				} else {
					fmt.Fprintf(&b, " %d–%d |", x.HeldMin, x.HeldMax)
				}
				per = append(per, fmt.Sprintf("%.0f (%s)", x.BytesPerEvent, bytesLabel(x.BufferBytes)))
				perMiB = append(perMiB, fmt.Sprintf("%.0f (%s)", x.HeldPerMiB, bytesLabel(x.BufferBytes)))
			}
			fmt.Fprintf(&b, " %s | %s |\n", orDash(strings.Join(per, ", ")), orDash(strings.Join(perMiB, ", ")))
		}
	}
	b.WriteString("\n## Per step\n\nMedians over the samples (achieved rate, drop ratio), total dropped, and latency percentiles of all samples' events in µs (p50 / p99 / p99.9).\n\n")
	b.WriteString("| offered pps | rcvbuf | delay | kernel | samples | achieved pps | delivered pps | drop ratio | dropped | unicast latency | end-to-end latency |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Rows {
		for i, c := range r.Cells {
			fmt.Fprintf(&b, "| %d | %s | %s | %s |", r.RatePPS, bytesLabel(r.RcvBuf), results.FormatDelay(r.ConsumerDelay), rep.Kernels[i].Name)
			if c == nil {
				b.WriteString(" 0 | — | — | — | — | — | — |\n")
				continue
			}
			fmt.Fprintf(&b, " %d | %.0f | %.0f | %.4f | %d | %s | %s |\n", c.Samples, c.AchievedPPS, c.DeliveredPPS, c.DropRatio, c.Dropped, pctLabel(c.Unicast), pctLabel(c.EndToEnd))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Write writes the report's JSON and Markdown into dir (created if
// needed) and returns their paths. Each file is written whole or not at
// all, so a report that fails leaves the one before it as it was.
func Write(dir string, rep *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		name  string
		write func(io.Writer, *Report) error
	}{{JSONFile, WriteJSON}, {MarkdownFile, WriteMarkdown}} {
		var buf bytes.Buffer
		if err := f.write(&buf, rep); err != nil {
			return paths, err
		}
		p := filepath.Join(dir, f.name)
		if err := results.WriteFileAtomic(p, buf.Bytes()); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func burstBufs(rep *Report) []int {
	var bufs []int
	for _, k := range rep.Kernels {
		for _, x := range k.Burst {
			if !slices.Contains(bufs, x.RcvBuf) {
				bufs = append(bufs, x.RcvBuf)
			}
		}
	}
	slices.Sort(bufs)
	return bufs
}

// bytesLabel writes 16384 as "16 KiB" and 212992 as "208 KiB".
func bytesLabel(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func pctLabel(p *Percentiles) string {
	if p == nil {
		return "—"
	}
	us := func(ns int64) string { return fmt.Sprintf("%.1f", float64(ns)/1e3) }
	return us(p.P50) + " / " + us(p.P99) + " / " + us(p.P999)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
