package record

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Rotation, as tcpdump's -C, -G and -W (Options.FileSize, FileInterval
// and Files): the trace goes into a set of files, each a complete trace
// of its own (section header, interface description, interface
// statistics at its close), made and closed on the receive goroutine
// between two batches, so that every frame goes to exactly one file and
// the accounting (sequence numbers, losses) stays one across them.
//
// Names. Options.Path is a strftime pattern (strftime.go), formatted in
// local time at the start of each file: the start of the recording for
// the first, the start of its interval for a file that FileInterval
// began. A number, six digits from 000000 and never reused, goes before
// the trace extension (trace.pcapng.zst: trace.000000.pcapng.zst,
// trace.000001.pcapng.zst, ...) whenever FileSize is set or the pattern
// has no conversion, so that names never repeat; with FileInterval alone
// the pattern must tell the intervals apart (its finest conversion at
// most the interval). Unlike tcpdump's -W, which reuses its numbers, a
// ring keeps counting, so the numbers sort as the files were written.
//
// Ring. With Files N, the oldest file of this recording is removed before
// the next is made: the directory never holds more than N files of the
// recording, the one being written included (files of other recordings
// are never touched). A new file is made under a hidden temporary name
// (.NAME.part) and renamed into place once its header is written, so a
// recorder killed at that moment leaves no headerless file under a
// trace's name, at most that .part file.
//
// When. FileSize counts the bytes that reached the file; they arrive a
// chunk of the writer's queue at a time (pcapnl.WriterOptions.Queue: 64
// KiB to 256 KiB of pcapng, compressed on the way) or at a flush, so a file
// ends up to about one chunk past FileSize, at most the whole Buffer when
// the writer fell behind. FileInterval boundaries fall on
// multiples of the interval since the Unix epoch (an hourly file starts
// on the hour); as with tcpdump, a file is made when a frame arrives, so
// an interval without frames makes none.

// numberedName is file n's name with its number before the trace
// extension.
func numberedName(name string, n int) string {
	stem, ext := splitTraceExt(name)
	return fmt.Sprintf("%s.%06d%s", stem, n, ext)
}

// traceExts are the endings a number goes before, longest first.
var traceExts = []string{".pcapng.zst", ".pcapng.gz", ".pcap.zst", ".pcap.gz", ".pcapng", ".pcap", ".zst", ".gz"}

func splitTraceExt(name string) (stem, ext string) {
	for _, e := range traceExts {
		if strings.HasSuffix(name, e) && len(name) > len(e) {
			return strings.TrimSuffix(name, e), e
		}
	}
	return name, ""
}

// rotates reports whether the trace is a set of files.
func (o *Options) rotates() bool { return o.FileSize > 0 || o.FileInterval > 0 }

// numbered reports whether the rotated files' names carry a number.
func (o *Options) numbered() bool {
	finest, _ := parseStrftime(o.Path)
	return o.FileSize > 0 || finest == 0
}

// fileName is the name of file n, started at t.
func (o *Options) fileName(n int, t time.Time) string {
	if !o.rotates() {
		return o.Path
	}
	name := strftime(o.Path, t.Local())
	if o.numbered() {
		name = numberedName(name, n)
	}
	return name
}

// MinFileSize is the smallest FileSize: below one page a file would hold
// a header and a frame or two, which is a mistake (tcpdump's -C 100,
// meaning 100 MB), not a plan.
const MinFileSize = 4096

// tcpdumpSize says what a tcpdump -C of n means here: n million bytes,
// and about how many of the K or M suffixes' powers of 1024 that is.
func tcpdumpSize(n int64) string {
	b := n * 1_000_000
	approx := fmt.Sprintf("%dK", (b+512)>>10)
	if b >= 1<<20 {
		approx = fmt.Sprintf("%dM", (b+1<<19)>>20)
	}
	return fmt.Sprintf("tcpdump's -C %d is %d bytes, about %s: K and M are powers of 1024", n, b, approx)
}

// validateRotation checks the rotation settings.
func (o *Options) validateRotation() error {
	bad := func(field string, v any, reason string) error { return &OptionError{field, v, reason} }
	switch {
	case o.FileSize < 0:
		return bad("FileSize", int64(o.FileSize), "must not be negative")
	case o.FileSize > 0 && o.FileSize < MinFileSize:
		return bad("FileSize", int64(o.FileSize), fmt.Sprintf("want at least %d bytes: sizes count bytes, not tcpdump's millions of bytes (%s)", MinFileSize, tcpdumpSize(int64(o.FileSize))))
	case o.FileInterval < 0:
		return bad("FileInterval", o.FileInterval, "must not be negative")
	case o.Files < 0:
		return bad("Files", o.Files, "must not be negative")
	case o.Files > 0 && !o.rotates():
		return bad("Files", o.Files, "a ring of files needs rotation, by size or by interval")
	case !o.rotates():
		return nil
	case o.Output != nil || o.Path == "-":
		return bad("Path", o.Path, "rotation makes files: it needs a file path, not a stream")
	}
	finest, err := parseStrftime(o.Path)
	switch {
	case err != nil:
		return bad("Path", o.Path, err.Error())
	case o.FileSize == 0 && finest > o.FileInterval:
		return bad("Path", o.Path, fmt.Sprintf("its finest conversion changes every %v, less often than a new file is made (every %v): names would repeat; use a finer one (%%M, %%S) or a size limit, which numbers the files", finest, o.FileInterval))
	}
	return nil
}

// earlierSetFile returns a file of an earlier recording into the numbered
// set whose file 0 is first, or "".
func earlierSetFile(o *Options, first string) string {
	if !o.numbered() {
		return ""
	}
	dir, base := filepath.Split(first)
	stem, ext := splitTraceExt(base)
	stem = strings.TrimSuffix(stem, ".000000")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(stem) + `\.[0-9]{6,}` + regexp.QuoteMeta(ext) + `$`)
	if dir == "" {
		dir = "."
	}
	entries, _ := os.ReadDir(dir)
	for _, de := range entries {
		if re.MatchString(de.Name()) {
			return filepath.Join(dir, de.Name())
		}
	}
	return ""
}
