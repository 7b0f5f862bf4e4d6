package vm

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// resolveModules returns the .ko paths (relative to k.Modules) needed to
// load the named kernel modules, dependencies first, each once, in an order
// insmod accepts.
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
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		ds := deps[p]
		// modules.dep lists the full closure, nearest first: load the
		// farthest first.
		for i := len(ds) - 1; i >= 0; i-- {
			visit(ds[i])
		}
		order = append(order, p)
	}
	for _, n := range names {
		p, ok := byName[strings.ReplaceAll(n, "-", "_")]
		if !ok {
			return nil, fmt.Errorf("vm: kernel module %q not found in %s/modules.dep", n, k.Modules)
		}
		visit(p)
	}
	return order, nil
}

// moduleName turns kernel/net/netfilter/nf_tables.ko into nf_tables.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}
