package replay

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// Rotated sets. An input that is a directory, or a glob pattern (a name
// with * ? or [ that is not a file), is one input: the set of trace files
// a rotating recorder (imp2-record -C/-G/-W) wrote, read one after the
// other in the order they were written, one file open at a time, however
// many there are. That order is by the timestamp of each file's first
// frame, ties broken by name: right for numbered names
// (trace.000009 < trace.000010, and on past 999999, where names stop
// sorting), for strftime names in any format, and for the two mixed. A
// file without frames (a recorder killed as it began it) goes last. A
// directory's files are its regular files but hidden ones (.NAME.part is
// a file the recorder had not finished making); each must be a trace. A
// file that fails midway (the last of a killed recording, cut at its last
// flush) ends there, the next goes on, and the first failure is reported
// after the last frame, as with merged inputs.

// isSet reports whether an input names a rotated set.
func isSet(name string) bool {
	if st, err := os.Stat(name); err == nil {
		return st.IsDir()
	}
	return strings.ContainsAny(name, "*?[")
}

// setFiles lists the files of the set name in the order they were
// written, and the time of its first frame.
func setFiles(name string) ([]string, int64, error) {
	var files []string
	hint := "" // for a file of a directory that is not a trace
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		hint = fmt.Sprintf(" (every file of a directory is read as a trace of the set; a glob such as %s picks some)", filepath.Join(name, "*.pcapng*"))
		entries, err := os.ReadDir(name)
		if err != nil {
			return nil, 0, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(name, e.Name()))
			}
		}
	} else if files, err = filepath.Glob(name); err != nil {
		return nil, 0, fmt.Errorf("glob: %w", err)
	}
	if len(files) == 0 {
		return nil, 0, errors.New("no trace files in it")
	}
	first := make(map[string]int64, len(files))
	for _, f := range files {
		t, err := firstFrameTime(f)
		if err != nil {
			if _, notOpened := errors.AsType[*fs.PathError](err); notOpened {
				hint = ""
			}
			return nil, 0, fmt.Errorf("%s: %w%s", f, err, hint)
		}
		first[f] = t
	}
	slices.SortFunc(files, func(a, b string) int { return cmp.Or(cmp.Compare(first[a], first[b]), cmp.Compare(a, b)) })
	return files, first[files[0]], nil
}

// firstFrameTime is the time of a trace's first frame, MaxInt64 for a
// trace without frames.
func firstFrameTime(name string) (int64, error) {
	rd, closeIt, err := openTrace(name, nil)
	if err != nil {
		return 0, err
	}
	defer closeIt()
	fr, err := rd.Next()
	switch {
	case err == nil:
		return fr.Time, nil
	case errors.Is(err, io.EOF), errors.Is(err, pcapnl.ErrTruncated):
		return math.MaxInt64, nil
	}
	return 0, err
}

// openTrace opens one trace file ("-": stdin) for the replay.
func openTrace(name string, stdin io.Reader) (*pcapnl.Reader, func(), error) {
	src, closeFile := stdin, func() {}
	if name != "-" {
		fh, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		src, closeFile = fh, func() { fh.Close() }
	}
	rd, err := pcapnl.NewReader(src)
	if err != nil {
		closeFile()
		return nil, nil, err
	}
	rd.SetIMP2Families(imp2.DefaultFamily, imp2.UserSockFamily) // as filter.IsIMP2
	return rd, func() { rd.Close(); closeFile() }, nil
}

// fileSet reads the files of a set one after the other.
type fileSet struct {
	names   []string
	next    int // index of the file to open next
	rd      *pcapnl.Reader
	closeRd func()
	err     error // the first failure, returned after the last frame
}

func (s *fileSet) Next() (pcapnl.Frame, error) {
	for {
		if s.rd == nil {
			if s.next == len(s.names) {
				return pcapnl.Frame{}, cmp.Or(s.err, io.EOF)
			}
			name := s.names[s.next]
			s.next++
			rd, closeRd, err := openTrace(name, nil)
			if err != nil {
				s.fail(name, err)
				continue
			}
			s.rd, s.closeRd = rd, closeRd
		}
		fr, err := s.rd.Next()
		if err == nil {
			return fr, nil
		}
		if !errors.Is(err, io.EOF) {
			s.fail(s.names[s.next-1], err)
		}
		s.Close()
	}
}

func (s *fileSet) fail(name string, err error) {
	if s.err == nil {
		s.err = &InputError{Name: name, Err: err}
	}
}

// Close closes the file being read.
func (s *fileSet) Close() error {
	if s.rd != nil {
		s.closeRd()
		s.rd, s.closeRd = nil, nil
	}
	return nil
}

// ExpandInputs returns names with each rotated set replaced by its files
// in the order they were written, for a program that needs files
// (imp2-replay -vm copies them into the VM); as several inputs they merge
// to the same order.
func ExpandInputs(names []string) ([]string, error) {
	var out []string
	for _, name := range names {
		if name == "-" || !isSet(name) {
			out = append(out, name)
			continue
		}
		files, _, err := setFiles(name)
		if err != nil {
			return nil, &InputError{Name: name, Err: err}
		}
		out = append(out, files...)
	}
	return out, nil
}
