package vm

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// An initramfs is a set of guest paths with their contents, written as an
// uncompressed cpio "newc" archive (the kernel unpacks it without a
// decompressor, and skipping gzip saves a second per boot).
type initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode    uint32 // type and permission bits, as in stat(2)
	data    []byte // file contents or symlink target
	srcPath string // host file to copy, instead of data
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
)

func newInitramfs() *initramfs {
	return &initramfs{entries: map[string]entry{}}
}

// addFile records a host file to be copied to guest path dst.
func (r *initramfs) addFile(dst, src string, perm uint32) {
	r.addParents(dst)
	r.entries[clean(dst)] = entry{mode: modeFile | perm, srcPath: src}
}

// addData records a file with the given contents.
func (r *initramfs) addData(dst string, data []byte, perm uint32) {
	r.addParents(dst)
	r.entries[clean(dst)] = entry{mode: modeFile | perm, data: data}
}

func (r *initramfs) addSymlink(dst, target string) {
	r.addParents(dst)
	r.entries[clean(dst)] = entry{mode: modeSymlink | 0o777, data: []byte(target)}
}

func (r *initramfs) addDir(dst string) {
	r.addParents(dst)
	if _, ok := r.entries[clean(dst)]; !ok {
		r.entries[clean(dst)] = entry{mode: modeDir | 0o755}
	}
}

func (r *initramfs) addParents(p string) {
	for d := path.Dir(clean(p)); d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if _, ok := r.entries[d]; !ok {
			r.entries[d] = entry{mode: modeDir | 0o755}
		}
	}
}

func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// writeTo writes the archive; parents sort before their children.
func (r *initramfs) writeTo(w io.Writer) error {
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := uint32(1)
	for _, n := range names {
		e := r.entries[n]
		data := e.data
		if e.srcPath != "" {
			b, err := os.ReadFile(e.srcPath)
			if err != nil {
				return fmt.Errorf("vm: initramfs %s: %w", n, err)
			}
			data = b
		}
		if err := writeCpioEntry(w, n, e.mode, ino, data); err != nil {
			return err
		}
		ino++
	}
	return writeCpioEntry(w, "TRAILER!!!", 0, 0, nil)
}

func writeCpioEntry(w io.Writer, name string, mode, ino uint32, data []byte) error {
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+8)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf, len(buf))
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, (4-len(data)%4)%4))
	return err
}

func pad4(b []byte, n int) []byte {
	for ; n%4 != 0; n++ {
		b = append(b, 0)
	}
	return b
}
