package vm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// resolveModules returns the .ko paths (relative to k.Modules) needed to
// load the named kernel modules, dependencies first, each once, in an order
// insmod accepts. Soft "pre:" dependencies count too: without modprobe
// nobody loads them later (nf_tables needs libcrc32c, which needs a
// crc32c implementation it only names).
func (k Kernel) resolveModules(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	f, err := os.Open(filepath.Join(k.Modules, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{} // path -> its dependencies, nearest first
	byName := map[string]string{} // module name -> path
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		path, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[path] = strings.Fields(rest)
		byName[moduleName(path)] = path
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	pre, err := k.softDeps(byName)
	if err != nil {
		return nil, err
	}
	builtin, err := k.builtinModules()
	if err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, d := range pre[moduleName(p)] {
			visit(d)
		}
		ds := deps[p]
		// modules.dep lists the full closure, nearest first: load the
		// farthest first.
		for i := len(ds) - 1; i >= 0; i-- {
			visit(ds[i])
		}
		order = append(order, p)
	}
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		p, ok := byName[n]
		if !ok && builtin[n] {
			continue // built into the image: nothing to load
		}
		if !ok {
			return nil, fmt.Errorf("vm: kernel module %q not found in %s/modules.dep", n, k.Modules)
		}
		visit(p)
	}
	return order, nil
}

// builtinModules reads modules.builtin: a module a config builds into the
// image (virtio_pci from 6.18 on) needs no insmod.
func (k Kernel) builtinModules() (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(k.Modules, "modules.builtin"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, line := range strings.Fields(string(b)) {
		names[moduleName(line)] = true
	}
	return names, nil
}

// moduleData returns the .ko at path uncompressed, with its name without
// the compression suffix. Newer Debian kernels ship .ko.xz (trixie) or
// .ko.zst, and the guest's busybox insmod passes the file to init_module
// as it is, so the host decompresses (with the xz and zstd programs, from
// xz-utils and zstd).
func moduleData(path string) (name string, data []byte, err error) {
	name = filepath.Base(path)
	var tool string
	switch {
	case strings.HasSuffix(name, ".ko"):
		data, err = os.ReadFile(path)
		return name, data, err
	case strings.HasSuffix(name, ".ko.xz"):
		tool = "xz"
	case strings.HasSuffix(name, ".ko.zst"):
		tool = "zstd"
	case strings.HasSuffix(name, ".ko.gz"):
		tool = "gzip"
	default:
		return "", nil, fmt.Errorf("vm: kernel module %s: unknown compression", path)
	}
	name = name[:strings.LastIndex(name, ".ko")+3]
	data, err = exec.Command(tool, "-dc", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", nil, fmt.Errorf("vm: decompressing kernel module %s with %s: %w", path, tool, err)
	}
	return name, data, nil
}

// moduleName turns kernel/net/netfilter/nf_tables.ko into nf_tables.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// softDeps reads modules.softdep's "pre:" lists, resolving each name
// through modules.alias. Of several providers it takes a *_generic one:
// the accelerated ones need CPU features qemu's default CPU lacks
// (crc32c_intel wants SSE4.2).
func (k Kernel) softDeps(byName map[string]string) (map[string][]string, error) {
	soft, err := os.ReadFile(filepath.Join(k.Modules, "modules.softdep"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	aliases, err := os.ReadFile(filepath.Join(k.Modules, "modules.alias"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	provider := func(name string) (string, bool) {
		if p, ok := byName[strings.ReplaceAll(name, "-", "_")]; ok {
			return p, true
		}
		found := ""
		for _, line := range strings.Split(string(aliases), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "alias" && f[1] == name {
				if p, ok := byName[strings.ReplaceAll(f[2], "-", "_")]; ok && (found == "" || strings.HasSuffix(moduleName(p), "_generic")) {
					found = p
				}
			}
		}
		return found, found != ""
	}
	pre := map[string][]string{}
	for _, line := range strings.Split(string(soft), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "softdep" {
			continue
		}
		mod := strings.ReplaceAll(f[1], "-", "_")
		inPre := false
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				inPre = true
			case "post:":
				inPre = false
			default:
				if p, ok := provider(w); inPre && ok {
					pre[mod] = append(pre[mod], p)
				}
			}
		}
	}
	return pre, nil
}
