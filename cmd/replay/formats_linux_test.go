package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/internal/cli/clitest"
	"github.com/imp2/imp2/internal/ptytest"
	"github.com/imp2/imp2/pcapnl"
)

// TestFormatByName: -to pcapng writes the format and compression -o
// names (pcapnl's rule), classic pcap with a warning, and tcpdump -r reads
// the .pcap; inputs are read by their magic numbers whatever their name.
func TestFormatByName(t *testing.T) {
	in, want, _ := writeTrace(t, traceSpec{n: 40, control: true}) // zstd pcapng named in.pcapng
	dir := t.TempDir()
	for _, tc := range []struct {
		name         string
		flags        []string
		comp, format string
	}{
		{"o.pcapng.zst", nil, "zstd", "pcapng"},
		{"o.pcapng.gz", nil, "gzip", "pcapng"},
		{"o.pcapng", nil, "none", "pcapng"},
		{"o", nil, "none", "pcapng"},
		{"o.pcap", nil, "none", "pcap"},
		{"o.pcap.zst", nil, "zstd", "pcap"},
		{"z.pcapng", []string{"-compress", "zstd"}, "zstd", "pcapng"},
	} {
		out := filepath.Join(dir, tc.name)
		code, so, errOut := runInProcess(append(tc.flags, "-i", in, "-to", "pcapng", "-o", out)...)
		if code != 0 {
			t.Fatalf("-o %s: exit %d: %s", tc.name, code, errOut)
		}
		// The summary names what was written, not -to's value.
		written := tc.format
		if tc.comp != "none" {
			written += " " + tc.comp
		}
		if !strings.HasPrefix(so, "imp2-replay: "+written+", ") {
			t.Errorf("-o %s %v: summary %q, want it to name %q", tc.name, tc.flags, so, written)
		}
		if warned := strings.Contains(errOut, "imp2-replay: warning: -o "+out+": classic pcap keeps no"); warned != (tc.format == "pcap") {
			t.Errorf("-o %s: stderr %q", tc.name, errOut)
		}
		got, rd := readFile(t, out)
		if rd.Compression() != tc.comp || rd.Format() != tc.format {
			t.Errorf("-o %s %v: %s %s, want %s %s", tc.name, tc.flags, rd.Compression(), rd.Format(), tc.comp, tc.format)
		}
		if len(got) != len(want)+2 || !bytes.Equal(got[1].Data, want[0]) || got[1].Direction != pcapnl.ToUser {
			t.Errorf("-o %s: %d frames, want %d", tc.name, len(got), len(want)+2)
		}
	}
	// A .pcap that cannot be made: the error alone, not a warning about
	// what a file that does not exist would lose.
	missing := filepath.Join(dir, "no-such-dir", "o.pcap")
	if code, _, errOut := runInProcess("-i", in, "-to", "pcapng", "-o", missing); code != 1 || !strings.Contains(errOut, missing) || strings.Contains(errOut, "warning") {
		t.Errorf("-o %s: exit %d, stderr %q; want 1 and the error alone", missing, code, errOut)
	}
	if stamps := imp2test.Tcpdump(t, filepath.Join(dir, "o.pcap")); stamps != nil && len(stamps) != len(want)+2 {
		t.Errorf("tcpdump -r o.pcap: %d packets, want %d", len(stamps), len(want)+2)
	}

	// A renamed file reads by its content: gzip pcapng named .pcap.
	renamed := filepath.Join(dir, "renamed.pcap")
	os.Rename(filepath.Join(dir, "o.pcapng.gz"), renamed)
	if code, so, errOut := runInProcess("-i", renamed, "-to", "text"); code != 0 || strings.Count(so, "\n") != len(want)+2 {
		t.Errorf("-i %s: exit %d, %d lines: %s", renamed, code, strings.Count(so, "\n"), errOut)
	}
}

// TestBadInputNamed: garbage after valid frames fails with the input's
// name and the offset of the bad block, after the frames before it.
func TestBadInputNamed(t *testing.T) {
	in, want, _ := writeTrace(t, traceSpec{n: 10, compress: pcapnl.None})
	b, _ := os.ReadFile(in)
	os.WriteFile(in, append(b, "not a pcapng block at all"...), 0o644)
	code, so, errOut := runInProcess("-i", in, "-to", "text")
	if code != exitInput || strings.Count(so, "\n") != len(want) {
		t.Fatalf("exit %d (want %d), %d lines (want %d): %s", code, exitInput, strings.Count(so, "\n"), len(want), errOut)
	}
	for _, s := range []string{in, "at offset " + itoa(uint32(len(b)))} {
		if !strings.Contains(errOut, s) {
			t.Errorf("error %q does not name %q", errOut, s)
		}
	}
}

// TestDirectoryWithOtherFiles: a directory given as a rotated set whose
// files are not all traces fails naming the file, with the hint of a glob
// that picks the traces.
func TestDirectoryWithOtherFiles(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 3})
	dir := filepath.Dir(in)
	os.WriteFile(filepath.Join(dir, "summary.json"), []byte("{}\n"), 0o644)
	code, _, errOut := runInProcess(dir, "-to", "text")
	for _, s := range []string{filepath.Join(dir, "summary.json"), "a glob such as " + filepath.Join(dir, "*.pcapng*")} {
		if code != exitInput || !strings.Contains(errOut, s) {
			t.Errorf("exit %d (want %d), error %q does not name %q", code, exitInput, errOut, s)
		}
	}
}

// TestRefusesTerminal: a trace is not written to a terminal (no -o);
// text is.
func TestRefusesTerminal(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 3})
	_, tty := ptytest.Open(t)
	var stderr bytes.Buffer
	code := run([]string{"-i", in, "-to", "pcapng"}, strings.NewReader(""), tty, &stderr)
	if code != exitUsage || stderr.String() != "imp2-replay: -o -: stdout is a terminal; redirect it or name a file\n" {
		t.Errorf("-to pcapng on a terminal: exit %d, stderr %q; want %d and one line", code, stderr.String(), exitUsage)
	}
	stderr.Reset()
	if code := run([]string{"-i", in, "-to", "text"}, strings.NewReader(""), tty, &stderr); code != 0 {
		t.Errorf("-to text on a terminal: exit %d: %s", code, stderr.String())
	}
}

func readFile(t *testing.T, path string) ([]pcapnl.Frame, *pcapnl.Reader) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapnl.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	frames, err := readTrace(t, rd)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return frames, rd
}

// TestInterfaceAsInput: tcpreplay's -i eth0 names an interface; here -i
// is the trace, and an input that is no file but an interface says so.
func TestInterfaceAsInput(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 3})
	clitest.Mistake(t, replayBin, "input lo: no such file, but a network interface: the inputs are traces (tcpreplay's -i is the interface to send out of)", "-i", "lo", in, "-to", "text")
}

// TestOutputIsStdout: -o naming the file stdout is (/dev/stdout, stdout
// redirected to that file) is -o -: the trace is whole, the summary on
// stderr; on a terminal it is refused. Opened a second time the file had
// an offset of its own and the summary on stdout overwrote the header.
func TestOutputIsStdout(t *testing.T) {
	in, _, _ := writeTrace(t, traceSpec{n: 5})
	path := filepath.Join(t.TempDir(), "out.pcap.zst") // the name still says the format
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stderr bytes.Buffer
	if code := run([]string{"-i", in, "-to", "pcapng", "-o", path}, strings.NewReader(""), f, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if frames, rd := readFile(t, path); len(frames) != 5 || rd.Format() != pcapnl.Pcap.String() || rd.Compression() != pcapnl.Zstd.String() {
		t.Errorf("%d frames in the trace (want 5), %v %v (want pcap zstd)", len(frames), rd.Format(), rd.Compression())
	}
	if !strings.Contains(stderr.String(), "wrote 5 frames") {
		t.Errorf("summary not on stderr: %q", stderr.String())
	}
	_, tty := ptytest.Open(t)
	stderr.Reset()
	code := run([]string{"-i", in, "-to", "pcapng", "-o", tty.Name()}, strings.NewReader(""), tty, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "stdout is a terminal") {
		t.Errorf("-o %s on that terminal: exit %d, stderr %q; want %d", tty.Name(), code, stderr.String(), exitUsage)
	}
}
