package record

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/imp2/imp2/pcapnl"
)

// The trace's files: one, or a rotated set (rotate.go says how they are
// named, when one ends and what the ring keeps).

// File is one file of the trace: the only one, or one of a rotated set.
type File struct {
	Path   string `json:"path"`
	Frames uint64 `json:"frames"` // in the file (those it accepted)
	Bytes  uint64 `json:"bytes"`  // on disk
}

// Removed sums the files a ring removed (Options.Files), so that a
// recording of any length keeps a summary of bounded size.
type Removed struct {
	Files  int    `json:"files"`
	Frames uint64 `json:"frames"`
	Bytes  uint64 `json:"bytes"`
}

// traceFiles is the trace's destination: one output, or the files of a
// rotated set, with the pcapnl.Writer of the current one.
type traceFiles struct {
	o     *Options
	wopts pcapnl.WriterOptions
	cur   *output
	out   *countingWriter // cur's
	w     *pcapnl.Writer  // cur's; nil before begin
	open  bool            // w is open
	total atomic.Uint64   // bytes that reached the outputs, every file (Progress)
	files []File          // the recording's files on disk, in order
	made  int             // files made, the number of the next
	gone  Removed         // by the ring
	next  int64           // Unix ns at which the next interval starts; 0 without FileInterval
	drops uint64          // pcapng drop counts in the closed files
	queue pcapnl.QueueStats
}

// openTraceFiles opens the first file before the registration, refusing
// an existing one as openOutput does, and, for a numbered set, any file
// of an earlier recording of the same set.
func openTraceFiles(o *Options, now time.Time) (*traceFiles, error) {
	name := o.fileName(0, now)
	if o.rotates() && !o.Force {
		if old := earlierSetFile(o, name); old != "" {
			return nil, &ExistsError{Path: old}
		}
	}
	out, err := openOutput(o, name)
	if err != nil {
		return nil, err
	}
	tf := &traceFiles{o: o, cur: out, files: []File{{Path: name}}, made: 1}
	if o.FileInterval > 0 {
		tf.next = now.Truncate(o.FileInterval).Add(o.FileInterval).UnixNano()
	}
	return tf, nil
}

// begin empties a file that Force overwrites and starts its writer, once
// the registration succeeded (wopts name the consumer's port).
func (tf *traceFiles) begin(wopts pcapnl.WriterOptions) error {
	tf.wopts = wopts
	if err := tf.cur.empty(); err != nil {
		return err
	}
	return tf.startWriter()
}

func (tf *traceFiles) startWriter() error {
	tf.out = &countingWriter{w: tf.cur.w, total: &tf.total}
	w, err := pcapnl.NewWriter(tf.out, tf.wopts)
	if err != nil {
		return err
	}
	tf.w, tf.open = w, true
	return nil
}

// due reports whether the frames of a batch read at t go into a new file.
func (tf *traceFiles) due(t int64) bool {
	return tf.open && (tf.o.FileSize > 0 && tf.out.n.Load() >= uint64(tf.o.FileSize) || tf.next != 0 && t >= tf.next)
}

// rotate closes the current file, complete, removes the oldest of a full
// ring and makes the next file, for frames read at t.
func (tf *traceFiles) rotate(t int64) error {
	if err := tf.closeFile(false, 0, 0); err != nil {
		return err
	}
	at := time.Unix(0, t)
	if tf.next != 0 && t >= tf.next {
		at = at.Truncate(tf.o.FileInterval)
		tf.next = at.Add(tf.o.FileInterval).UnixNano()
	}
	if tf.o.Files > 0 && len(tf.files) >= tf.o.Files {
		old := tf.files[0]
		if err := os.Remove(old.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the oldest file of the ring: %w", err)
		}
		tf.files = tf.files[1:]
		tf.gone.Files, tf.gone.Frames, tf.gone.Bytes = tf.gone.Files+1, tf.gone.Frames+old.Frames, tf.gone.Bytes+old.Bytes
	}
	name := tf.o.fileName(tf.made, at)
	tf.made++
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".part")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	tf.cur = &output{w: f, f: f, path: name}
	tf.files = append(tf.files, File{Path: name})
	if err := tf.startWriter(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("creating %s: %w", name, err)
	}
	return place(tmp, name, tf.o.Force)
}

// place gives the temporary file tmp its name, refusing an existing file
// unless force. A rename, not a link: the directory never shows the file
// under two names.
func place(tmp, name string, force bool) error {
	if _, err := os.Lstat(name); err == nil && !force {
		os.Remove(tmp)
		return fmt.Errorf("creating %s: %w", name, &ExistsError{Path: name})
	}
	return os.Rename(tmp, name)
}

// closeFile closes the current file, complete with its interface
// statistics: with set, received and dropped, else the writer's own (its
// frames and their drop counts).
func (tf *traceFiles) closeFile(set bool, received, dropped uint64) error {
	if !tf.open {
		return nil
	}
	tf.open = false
	if set {
		tf.w.SetInterfaceStats(received, dropped)
	}
	_, drops := tf.w.Frames()
	err := tf.w.Close()
	q := tf.w.QueueStats()
	tf.queue.Bytes, tf.queue.MaxQueued = q.Bytes, max(tf.queue.MaxQueued, q.MaxQueued)
	tf.queue.Waits, tf.queue.WaitTime = tf.queue.Waits+q.Waits, tf.queue.WaitTime+q.WaitTime
	f := &tf.files[len(tf.files)-1]
	f.Frames, f.Bytes = tf.w.FramesOut(), tf.out.n.Load()
	tf.drops += drops
	if cerr := tf.cur.close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", tf.cur.path, cerr)
	}
	return err
}

// finish closes the last file. Its interface statistics take the losses
// of the recording not already counted in the earlier files' (lost, the
// whole recording's, less their drop counts), so that the files' isb_ifdrop
// add up to the recording's losses and their isb_ifrecv to its frames
// plus losses.
func (tf *traceFiles) finish(lost uint64) error {
	if !tf.open {
		return nil
	}
	rest := lost - min(lost, tf.drops)
	frames, _ := tf.w.Frames()
	return tf.closeFile(true, frames+rest, rest)
}

// framesOut is how many frames reached the files.
func (tf *traceFiles) framesOut() uint64 {
	n := tf.gone.Frames
	for _, f := range tf.files {
		n += f.Frames
	}
	if tf.open {
		n += tf.w.FramesOut()
	}
	return n
}
