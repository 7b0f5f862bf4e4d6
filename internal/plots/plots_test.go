package plots_test

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imp2/imp2/internal/plots"
	"github.com/imp2/imp2/internal/results"
	"github.com/imp2/imp2/internal/results/resultstest"
)

// outDir keeps the figures when IMP2_PLOTS_OUT is set, to look at them.
func outDir(t *testing.T) string {
	if d := os.Getenv("IMP2_PLOTS_OUT"); d != "" {
		d = filepath.Join(d, t.Name())
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// checkFiles asserts each path is a valid PNG of the expected size (panels
// of plots.TileWidth×TileHeight at 96 dpi) or an SVG document.
func checkFiles(t *testing.T, paths []string, panels map[string][2]int) {
	t.Helper()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			t.Fatalf("%s is empty", p)
		}
		name := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		grid, ok := panels[name]
		if !ok {
			t.Fatalf("unexpected figure %s", p)
		}
		switch filepath.Ext(p) {
		case ".png":
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			w, h := grid[1]*int(plots.TileWidth.Dots(96)), grid[0]*int(plots.TileHeight.Dots(96))
			if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
				t.Errorf("%s is %dx%d, want %dx%d", p, b.Dx(), b.Dy(), w, h)
			}
		case ".svg":
			checkSVG(t, p, data)
		default:
			t.Errorf("unexpected file %s", p)
		}
	}
	if len(paths) != 2*len(panels) {
		t.Errorf("wrote %d files, want PNG and SVG of %d figures: %v", len(paths), len(panels), paths)
	}
}

func checkSVG(t *testing.T, p string, data []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	sawSVG := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "svg" {
			sawSVG = true
		}
	}
	if !sawSVG {
		t.Errorf("%s has no <svg> element", p)
	}
}

func TestWriteAll(t *testing.T) {
	o := resultstest.Default()
	o.Events = 3000
	run := resultstest.Run(o)
	paths, err := plots.WriteAll(run, outDir(t))
	if err != nil {
		t.Fatal(err)
	}
	// Two buffer sizes × one delay: two rows; two latency kinds: two columns.
	checkFiles(t, paths, map[string][2]int{"latency": {2, 2}, "spectrum": {2, 2}, "drops": {1, 1}, "queue": {2, 1}, "rate": {1, 1}})
}

func TestWriteAllDegenerate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   func(*resultstest.Options)
		edit   func(*results.Run)
		panels map[string][2]int
	}{
		{"zero drops", func(o *resultstest.Options) { o.Rates = []int{1000, 2000} }, nil,
			map[string][2]int{"latency": {2, 2}, "spectrum": {2, 2}, "drops": {1, 1}, "queue": {2, 1}, "rate": {1, 1}}},
		{"single step", func(o *resultstest.Options) { o.Rates, o.RcvBufs, o.Reps = []int{5000}, []int{212992}, 1 }, nil,
			map[string][2]int{"latency": {1, 2}, "spectrum": {1, 2}, "drops": {1, 1}, "queue": {1, 1}, "rate": {1, 1}}},
		{"no latency", func(o *resultstest.Options) { o.NoLatency = true }, nil,
			map[string][2]int{"drops": {1, 1}, "queue": {2, 1}, "rate": {1, 1}}},
		{"zero latencies and empty queue", func(o *resultstest.Options) { o.Rates, o.RcvBufs = []int{1000}, []int{4096} },
			func(r *results.Run) {
				for i := range r.Steps {
					for j := range r.Steps[i].Samples {
						s := &r.Steps[i].Samples[j]
						s.Unicast = latencyOf(t, 0)
						s.EndToEnd = latencyOf(t, 100)
						s.Queue.Samples, s.Queue.PeakBytes = nil, 0
					}
				}
			},
			map[string][2]int{"latency": {1, 1}, "spectrum": {1, 1}, "drops": {1, 1}, "rate": {1, 1}}},
		{"exact queue with gaps", func(*resultstest.Options) {}, exactQueues,
			map[string][2]int{"latency": {2, 2}, "spectrum": {2, 2}, "drops": {1, 1}, "queue": {2, 1}, "rate": {1, 1}}},
		{"two delays", func(o *resultstest.Options) { o.Delays = []time.Duration{0, 20 * time.Microsecond}; o.Events = 500 }, nil,
			map[string][2]int{"latency": {4, 2}, "spectrum": {4, 2}, "drops": {2, 1}, "queue": {4, 1}, "rate": {1, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := resultstest.Default()
			o.Events = 1000
			tc.opts(&o)
			run := resultstest.Run(o)
			if tc.edit != nil {
				tc.edit(run)
			}
			if err := run.Validate(); err != nil {
				t.Fatal(err)
			}
			paths, err := plots.WriteAll(run, outDir(t))
			if err != nil {
				t.Fatal(err)
			}
			checkFiles(t, paths, tc.panels)
		})
	}
}

func TestWriteComparison(t *testing.T) {
	o := resultstest.Default()
	o.Events = 1000
	base := results.ValuesOf(resultstest.Run(o))
	o.Seed, o.ExtraCost = 2, 3*time.Microsecond
	o.RcvBufs = []int{212992, 1 << 20} // one series in common
	paths, err := plots.WriteComparison(base, results.ValuesOf(resultstest.Run(o)), "main", "HEAD", outDir(t))
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, paths, map[string][2]int{"compare": {1, 3}})

	o.RcvBufs = []int{1 << 20}
	if _, err := plots.WriteComparison(base, results.ValuesOf(resultstest.Run(o)), "main", "HEAD", t.TempDir()); err == nil {
		t.Error("no series in common, but no error")
	}
}

// exactQueues turns every sample's queue into an exact trace whose sequence
// gaps all open at the limit, one gap per sample that dropped.
func exactQueues(r *results.Run) {
	for i := range r.Steps {
		for j := range r.Steps[i].Samples {
			s := &r.Steps[i].Samples[j]
			q := &s.Queue
			q.Method, q.TrueSize = results.QueueExact, 768
			if n := q.Samples; s.Drops.SeqGaps != nil && *s.Drops.SeqGaps > 0 && len(n) > 1 {
				q.Gaps = []results.QueueGap{{From: n[0].Offset, To: n[len(n)/2].Offset, Events: *s.Drops.SeqGaps, DropRmem: q.RcvBuf}}
			}
		}
	}
}

// TestEmulationLabelled: a run of the user-space emulator (source emu) is
// said to be an emulation in the comparison and cross-kernel figures, as
// it is in a run's own plots (its legend and titles), and a host run of
// the kernel's path is not.
func TestEmulationLabelled(t *testing.T) {
	o := resultstest.Default()
	o.Events = 200
	kmod := resultstest.Run(o)
	o.Source = results.SourceEmu
	emu := resultstest.Run(o)
	svgText := func(paths []string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, ".svg") {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				return string(data)
			}
		}
		t.Fatalf("no SVG in %v", paths)
		return ""
	}
	for _, tc := range []struct {
		name       string
		svg        string
		want, lack []string
	}{
		{"compare emu", svgText(plots.WriteComparison(results.ValuesOf(emu), results.ValuesOf(emu), "a", "b", t.TempDir())),
			[]string{"base a (user-space emulation)", "emulation: emu is a user-space emulation"}, nil},
		{"compare kmod", svgText(plots.WriteComparison(results.ValuesOf(kmod), results.ValuesOf(kmod), "a", "b", t.TempDir())),
			nil, []string{"emulation"}},
		{"kernels emu", svgText(plots.WriteKernels([]*results.Run{kmod, emu}, []string{"k kmod", "k emu (emulation)"}, t.TempDir())),
			[]string{"emulation: emu is a user-space emulation"}, nil},
		{"kernels kmod", svgText(plots.WriteKernels([]*results.Run{kmod}, []string{"k"}, t.TempDir())),
			[]string{"on the host"}, []string{"emulation"}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(tc.svg, w) {
				t.Errorf("%s: the figure lacks %q", tc.name, w)
			}
		}
		for _, w := range tc.lack {
			if strings.Contains(tc.svg, w) {
				t.Errorf("%s: the figure says %q", tc.name, w)
			}
		}
	}
}
