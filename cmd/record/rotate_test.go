package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
	replayengine "github.com/imp2/imp2/replay"
)

// tsharkFrames returns how many frames tshark reads from path, failing the
// test when tshark exits non-zero; -1 when tshark is not installed
// outside CI.
func tsharkFrames(t *testing.T, path string) int {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark not installed and CI is set")
		}
		return -1
	}
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	return strings.Count(string(out), "\n")
}

// setFiles returns the files of a rotated set in dir, in the order of
// their numbers, and any temporary .part file left beside them.
func setFiles(t *testing.T, dir string) (files, parts []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			parts = append(parts, e.Name())
		} else {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(files) // six-digit numbers sort as written
	return files, parts
}

// readSet reads every file of a rotated set: each a complete trace with
// its own interface statistics (the last may be cut by a kill when
// truncatedLast), read by pcapnl and by tshark alike. It returns their
// frames in order.
func readSet(t *testing.T, files []string, truncatedLast bool) (all []pcapnl.Frame, perFile []int) {
	t.Helper()
	for i, path := range files {
		last := i == len(files)-1
		frames, rd, err := readTraceFile(t, path, truncatedLast && last)
		switch st := rd.Stats(); {
		case err != nil:
			t.Logf("%s: %d frames, then %v (killed)", filepath.Base(path), len(frames), err)
		case len(st) != 1 || st[0].Received != uint64(len(frames))+st[0].Dropped:
			t.Errorf("%s: interface statistics %+v; want one block, received = its %d frames + dropped", path, st, len(frames))
		}
		if n := tsharkFrames(t, path); n >= 0 && n != len(frames) {
			t.Errorf("%s: tshark reads %d frames, pcapnl %d", path, n, len(frames))
		}
		all, perFile = append(all, frames...), append(perFile, len(frames))
	}
	return all, perFile
}

// TestRotateBySize: -C makes a numbered set of complete files, each at
// least the size asked (but the last) and not far past it, whose frames
// together are the whole conversation, none lost or repeated; the
// summary lists them with their frame counts.
func TestRotateBySize(t *testing.T) {
	for ext, size := range map[string]int64{".pcapng": 512 << 10, ".pcapng.zst": 32 << 10} {
		t.Run(ext, func(t *testing.T) {
			p := newProducer(t)
			dir := t.TempDir()
			const n, buffer = 30000, 128 << 10
			r := startRecord(t, p.args("-o", filepath.Join(dir, "t"+ext), "-C", fmt.Sprint(size), "-buffer", "128K",
				"-count", fmt.Sprint(n), "-json", "-q")...)
			p.waitConsumers(t, 1)
			if sent := p.send(t, n); sent != n {
				t.Fatalf("producer queued %d of %d", sent, n)
			}
			if code := r.wait(t); code != exitOK {
				t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
			}
			s := r.summary(t)
			files, parts := setFiles(t, dir)
			if len(files) < 3 || len(files) != len(s.Files) || len(parts) != 0 {
				t.Fatalf("%d files on disk (%v), summary lists %d: want the same, at least 3, no .part", len(files), parts, len(s.Files))
			}
			frames, perFile := readSet(t, files, false)
			checkConversation(t, frames, s.Port, n)
			for i, f := range s.Files {
				st, err := os.Stat(files[i])
				if err != nil || f.Path != files[i] || f.Frames != uint64(perFile[i]) || f.Bytes != uint64(st.Size()) {
					t.Errorf("summary file %d %+v; on disk %s, %d frames, %v", i, f, files[i], perFile[i], st)
				}
				if last := i == len(files)-1; !last && (st.Size() < size || st.Size() > size+buffer+64<<10) {
					t.Errorf("%s: %d bytes, want %d to %d (-C, plus at most the queue and a block)", f.Path, st.Size(), size, size+buffer+64<<10)
				}
			}
			if want := filepath.Join(dir, "t.000001"+ext); files[1] != want {
				t.Errorf("second file %s, want %s", files[1], want)
			}
		})
	}
}

// TestRotateRing: with -W 3 and a file every few hundred frames, the
// directory never holds more than 3 files of the recording (the one being
// written included), and at the end holds the last 3, which continue the
// numbering without a gap.
func TestRotateRing(t *testing.T) {
	p := newProducer(t)
	dir := t.TempDir()
	const n, ring = 40000, 3
	r := startRecord(t, p.args("-o", filepath.Join(dir, "ring.pcapng"), "-C", "16K", "-W", fmt.Sprint(ring),
		"-buffer", "128K", "-count", fmt.Sprint(n), "-json", "-q")...)
	var most, polls atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if entries, err := os.ReadDir(dir); err == nil {
				if k := int64(len(entries)); k > most.Load() {
					most.Store(k)
				}
				polls.Add(1)
			}
		}
	}()
	p.waitConsumers(t, 1)
	if sent := p.send(t, n); sent != n {
		t.Fatalf("producer queued %d of %d", sent, n)
	}
	code := r.wait(t)
	close(stop)
	<-watched
	if code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	s := r.summary(t)
	files, _ := setFiles(t, dir)
	if s.Removed == nil {
		t.Fatalf("nothing removed; stderr:\n%s", r.stderr.String())
	}
	t.Logf("%d files written, %d removed; at most %d entries in the directory over %d looks", len(s.Files)+s.Removed.Files, s.Removed.Files, most.Load(), polls.Load())
	if most.Load() > ring || len(files) != ring || len(s.Files) != ring || s.Removed.Files < 10 {
		t.Fatalf("at most %d files seen, %d at the end, %d listed, %d removed; want at most %d, %d at the end and listed, at least 10 removed",
			most.Load(), len(files), len(s.Files), s.Removed.Files, ring, ring)
	}
	var kept uint64
	for i, f := range s.Files {
		kept += f.Frames
		if f.Path != files[i] {
			t.Errorf("kept file %d: summary %+v, on disk %s", i, f, files[i])
		}
	}
	if kept+s.Removed.Frames != s.Frames {
		t.Errorf("frames: %d in the kept files + %d removed, %d written", kept, s.Removed.Frames, s.Frames)
	}
	var onDisk int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		onDisk += st.Size()
	}
	if bound := int64(ring * (16<<10 + 128<<10 + 64<<10)); onDisk > bound {
		t.Errorf("%d bytes on disk, want at most %d: %d files of -C plus the queue and a block", onDisk, bound, ring)
	}
	frames, _ := readSet(t, files, false)
	var seq uint32
	for i, f := range frames {
		h := header(t, f)
		if h.Type != imp2.TypeEvent {
			continue
		}
		if seq != 0 && h.Seq != seq+1 {
			t.Fatalf("frame %d: event seq %d after %d: the kept files must continue each other", i, h.Seq, seq)
		}
		seq = h.Seq
	}
	if seq != n {
		t.Errorf("last event %d, want %d", seq, n)
	}
}

// TestRotateByInterval: -G 1s names files by a strftime pattern at the
// start of each interval (on whole seconds); every frame of a file lies in
// its interval.
func TestRotateByInterval(t *testing.T) {
	p := newProducer(t)
	dir := t.TempDir()
	const layout = "20060102-150405"
	r := startRecord(t, p.args("-o", filepath.Join(dir, "g-%Y%m%d-%H%M%S.pcapng.zst"), "-G", "1s",
		"-duration", "3500ms", "-flush", "100ms", "-json", "-q")...)
	p.waitConsumers(t, 1)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		p.send(t, 64)
		time.Sleep(10 * time.Millisecond)
	}
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	s := r.summary(t)
	files, _ := setFiles(t, dir)
	if len(files) < 3 || len(files) != len(s.Files) {
		t.Fatalf("%d files %v, summary %d; want at least 3", len(files), files, len(s.Files))
	}
	var err error
	frames, perFile := readSet(t, files, false)
	checkConversation(t, frames, s.Port, int(p.seq))
	starts := make([]time.Time, len(files))
	for i, path := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "g-"), ".pcapng.zst")
		if starts[i], err = time.ParseInLocation(layout, name, time.Local); err != nil {
			t.Fatalf("file name %s: %v", path, err)
		}
		if i > 0 && (starts[i].Nanosecond() != 0 || !starts[i].After(starts[i-1])) {
			t.Errorf("file %s does not start on a later whole second", path)
		}
	}
	at := 0
	for i, path := range files {
		for _, f := range frames[at : at+perFile[i]] {
			ft := time.Unix(0, f.Time)
			if ft.Before(starts[i]) || i+1 < len(files) && !ft.Before(starts[i+1]) {
				t.Errorf("%s: frame at %s outside its interval", path, ft.Format(time.RFC3339Nano))
				break
			}
		}
		at += perFile[i]
	}
}

// TestRotateSIGKILL kills the recorder while it rotates every few
// hundred frames: every closed file is complete, the open one is valid up
// to its last flush, tshark reads them all, and together they hold the
// conversation's frames in order, none repeated.
func TestRotateSIGKILL(t *testing.T) {
	p := newProducer(t)
	dir := t.TempDir()
	r := startRecord(t, p.args("-o", filepath.Join(dir, "k.pcapng.zst"), "-C", "8K", "-buffer", "128K", "-flush", "20ms", "-q")...)
	p.waitConsumers(t, 1)
	for {
		p.send(t, 256)
		if files, _ := setFiles(t, dir); len(files) >= 8 {
			break
		}
		select {
		case <-r.done:
			t.Fatalf("imp2-record ended; stderr:\n%s", r.stderr.String())
		default:
		}
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.wait(t)
	files, parts := setFiles(t, dir)
	frames, _ := readSet(t, files, true)
	t.Logf("killed after %d files (%v left), %d frames readable of %d events sent", len(files), parts, len(frames), p.seq)
	if h := header(t, frames[0]); h.Type != imp2.TypeRegister {
		t.Fatalf("first frame %+v, want the registration", h)
	}
	for i, f := range frames[1:] {
		if h := header(t, f); h.Type != imp2.TypeEvent || h.Seq != uint32(i+1) {
			t.Fatalf("frame %d: %+v, want event %d: no frame lost or repeated across files", i+1, h, i+1)
		}
	}
	if len(frames) < 8*60 {
		t.Errorf("%d frames in %d files of at least 8 KiB", len(frames), len(files))
	}
	// imp2-replay reads the set to the last flushed frame and says the
	// last file was cut (exit 3) when it was.
	got, code, stderr := replaySet(t, dir)
	_, _, cut := readTraceFile(t, files[len(files)-1], true)
	if len(got) != len(frames) || (cut != nil) != (code == 3) || code != 0 && code != 3 {
		t.Errorf("imp2-replay -i %s: %d frames, exit %d (%s); want the %d readable, exit 3 for a cut file (%v)", dir, len(got), code, stderr, len(frames), cut)
	}
}

// TestRotateOptions: rotation settings the recorder refuses, named by
// flag, exit status 2.
func TestRotateOptions(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", filepath.Join(dir, "a.pcapng"), "-W", "3"}, "-W 3: a ring of files needs rotation, by size or by interval (-C SIZE or -G DURATION"},
		{[]string{"-o", "-", "-C", "1M"}, "-o -: rotation makes files"},
		{[]string{"-o", filepath.Join(dir, "t.pcapng"), "-C", "1000"}, "-C 1000: want at least 4096 bytes: sizes count bytes, not tcpdump's millions of bytes (tcpdump's -C 1000 is 1000000000 bytes, about 954M: K and M are powers of 1024)\n"},
		{[]string{"-o", filepath.Join(dir, "h-%H.pcapng"), "-G", "1m"}, "names would repeat"},
		{[]string{"-o", filepath.Join(dir, "x-%Q.pcapng"), "-G", "1s"}, "unknown conversion %Q"},
	} {
		r := startRecord(t, c.args...)
		if code := r.wait(t); code != exitUsage || !strings.Contains(r.stderr.String(), c.want) || strings.Count(r.stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line with %q", c.args, code, r.stderr.String(), c.want)
		}
	}
	// A file of an earlier recording into the same numbered set.
	old := filepath.Join(dir, "set.000003.pcapng")
	if err := os.WriteFile(old, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRecord(t, "-o", filepath.Join(dir, "set.pcapng"), "-C", "1M", "-family", "2", "-peer", "1")
	if code := r.wait(t); code != exitUsage || !strings.Contains(r.stderr.String(), old+" exists") {
		t.Errorf("earlier set file: exit %d, stderr %q; want 2 naming %s", code, r.stderr.String(), old)
	}
	if b, _ := os.ReadFile(old); string(b) != "precious" {
		t.Errorf("the earlier file was touched: %q", b)
	}
}

// TestCaptureFilter: -filter writes only the matching frames; the others
// are counted as filtered, and the numbers they leave out of the trace
// are no sequence gaps and no losses (exit status 0).
func TestCaptureFilter(t *testing.T) {
	p := newProducer(t)
	out := filepath.Join(t.TempDir(), "f.pcapng")
	const n = 1000
	// imp2test.Event(n) comes from 198.18.(n>>8).(n&255): the first half
	// of every 256 matches.
	r := startRecord(t, p.args("-o", out, "-filter", "type=event src=198.18.0.0/25|198.18.1.0/25|198.18.2.0/25|198.18.3.0/25",
		"-count", fmt.Sprint(n), "-json", "-q")...)
	p.waitConsumers(t, 1)
	p.send(t, n)
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	s := r.summary(t)
	frames, rd, _ := readTraceFile(t, out, false)
	var want []uint32
	for seq := uint32(1); seq <= n; seq++ {
		if seq&255 < 128 {
			want = append(want, seq)
		}
	}
	var got []uint32
	for _, f := range frames {
		h := header(t, f)
		if h.Type != imp2.TypeEvent {
			t.Fatalf("frame %+v in the trace: the filter takes events only", h)
		}
		got = append(got, h.Seq)
	}
	if !slices.Equal(got, want) {
		t.Errorf("events in the trace %v..., want the %d with src in the first half of each /24", got[:min(len(got), 8)], len(want))
	}
	// Filtered: the other events and the conversation's 4 frames.
	if s.Filtered != uint64(n-len(want)+4) || s.Frames != uint64(len(want)) || s.Drops.SeqGaps != 0 || s.Drops.Lost != 0 || s.Events != n {
		t.Errorf("summary filtered %d, frames %d, drops %+v, events %d; want %d filtered, %d written, no gaps, %d events",
			s.Filtered, s.Frames, s.Drops, s.Events, n-len(want)+4, len(want), n)
	}
	if st := rd.Stats(); len(st) != 1 || st[0].Received != uint64(len(want)) || st[0].Dropped != 0 {
		t.Errorf("interface statistics %+v; want received %d, dropped 0", st, len(want))
	}
}

// TestReplayRotatedSet: imp2-replay reads a rotated set as one input, in
// the order it was written, given as a directory, as a glob, or after its
// files were renamed so that their names sort backwards (the order is by
// each file's first frame, not by name).
func TestReplayRotatedSet(t *testing.T) {
	p := newProducer(t)
	dir := filepath.Join(t.TempDir(), "set")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	r := startRecord(t, p.args("-o", filepath.Join(dir, "s.pcapng.zst"), "-C", "16K", "-buffer", "128K", "-count", fmt.Sprint(n), "-json", "-q")...)
	p.waitConsumers(t, 1)
	p.send(t, n)
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	s := r.summary(t)
	if len(s.Files) < 5 {
		t.Fatalf("%d files, want at least 5", len(s.Files))
	}
	replayed := func(inputs ...string) []pcapnl.Frame {
		t.Helper()
		frames, code, stderr := replaySet(t, inputs...)
		if code != 0 {
			t.Fatalf("imp2-replay -i %v: exit %d\n%s", inputs, code, stderr)
		}
		return frames
	}
	checkConversation(t, replayed(dir), s.Port, n)
	checkConversation(t, replayed(filepath.Join(dir, "s.*.pcapng.zst")), s.Port, n)
	files, _ := setFiles(t, dir)
	if got, err := replayengine.ExpandInputs([]string{"-", dir}); err != nil || !slices.Equal(got, append([]string{"-"}, files...)) {
		t.Errorf("ExpandInputs(-, %s): %v, %v; want - and the files in order", dir, got, err)
	}
	// One -i per file, last first, as merged inputs: the same order.
	backward := slices.Clone(files)
	slices.Reverse(backward)
	checkConversation(t, replayed(backward...), s.Port, n)
	for i, f := range files { // s.000000 -> 999-x, s.000001 -> 998-x: names now sort backwards
		if err := os.Rename(f, filepath.Join(dir, fmt.Sprintf("%03d-x.pcapng.zst", 999-i))); err != nil {
			t.Fatal(err)
		}
	}
	checkConversation(t, replayed(dir), s.Port, n)
	// An output inside the input directory would join the set.
	cmd := exec.Command(replayBin, "-i", dir, "-to", "pcapng", "-o", filepath.Join(dir, "again.pcapng"))
	b, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(b), "part of the input set") {
		t.Errorf("output inside the input directory: exit %d, %q; want 2", code, b)
	}
}

// replaySet runs imp2-replay -i on each input into a pcapng file and
// returns its frames, exit status and stderr.
func replaySet(t *testing.T, inputs ...string) ([]pcapnl.Frame, int, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "all.pcapng")
	var args []string
	for _, in := range inputs {
		args = append(args, "-i", in)
	}
	cmd := exec.Command(replayBin, append(args, "-to", "pcapng", "-o", out)...)
	b, _ := cmd.CombinedOutput()
	frames, _, _ := readTraceFile(t, out, false)
	return frames, cmd.ProcessState.ExitCode(), string(b)
}
