// Package clitest checks that a built imp2 binary keeps package cli's
// conventions, for the commands' table tests: -h, one-line flag errors,
// -version against the build information the toolchain stamped.
package clitest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imp2/imp2/internal/cli"
)

// Result is one run of a binary.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs bin with args, stdin empty, in a temporary directory.
func Run(t testing.TB, bin string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return Result{cmd.ProcessState.ExitCode(), o.String(), e.String()}
}

// Help checks that `bin args... -h` (and -help, --help) exits 0 with
// nothing on stderr and, on stdout, the usage line (starting with
// usage), a description, the flags (at least -version) and the exit
// statuses, in lines of at most cli.Width columns.
func Help(t *testing.T, bin, usage string, args ...string) {
	t.Helper()
	for _, h := range []string{"-h", "-help", "--help"} {
		r := Run(t, bin, append(args, h)...)
		paras := strings.Split(r.Stdout, "\n\n")
		ok := r.Code == 0 && r.Stderr == "" && len(paras) >= 4 &&
			strings.HasPrefix(r.Stdout, "usage: "+usage) && len(strings.Fields(paras[1])) >= 10 &&
			strings.Contains(r.Stdout, "\nflags:\n") && strings.Contains(r.Stdout, "\n  -version\n") &&
			regexp.MustCompile(`\nexit status:\n0 `).MatchString(r.Stdout)
		if !ok {
			t.Errorf("%q %s: exit %d, stderr %q, stdout:\n%s\nwant exit 0, usage %q, a description, flags and exit statuses", args, h, r.Code, r.Stderr, r.Stdout, usage)
		}
	}
	r := Run(t, bin, append(args, "-h")...)
	for _, line := range strings.Split(r.Stdout, "\n") {
		if n := columns(line); n > cli.Width {
			t.Errorf("%q -h: a line of %d columns, over %d:\n%s", args, n, cli.Width, line)
		}
	}
}

// columns is how wide line is on a terminal: characters, tabs to the next
// multiple of 8.
func columns(line string) int {
	n := 0
	for _, r := range line {
		if r == '\t' {
			n += 8 - n%8
		} else {
			n++
		}
	}
	return n
}

// Mistake checks that `bin args...` exits 2 with nothing on stdout and
// exactly one line on stderr, containing want.
func Mistake(t *testing.T, bin, want string, args ...string) {
	t.Helper()
	r := Run(t, bin, args...)
	if r.Code != 2 || r.Stdout != "" || strings.Count(r.Stderr, "\n") != 1 || !strings.HasSuffix(r.Stderr, "\n") || !strings.Contains(r.Stderr, want) {
		t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", args, r.Code, r.Stdout, r.Stderr, want)
	}
}

// Version checks that `bin args... -version` prints, on one line, the
// build the toolchain stamped into bin as `go version -m` reads it: the
// main module's version, and its VCS revision and "dirty" when there are
// (a binary built in a git checkout with -buildvcs); a binary without VCS
// settings (a worktree, -buildvcs=false) says "(devel)" and no revision.
func Version(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	mod := regexp.MustCompile(`(?m)^\tmod\t\S+\t(\S+)`).FindSubmatch(out)
	rev := regexp.MustCompile(`(?m)^\tbuild\tvcs\.revision=(\S+)$`).FindSubmatch(out)
	dirty := bytes.Contains(out, []byte("\tbuild\tvcs.modified=true\n"))
	want := "(devel)"
	if mod != nil {
		want = string(mod[1])
	}
	if rev != nil {
		want += " revision " + string(rev[1])
		if dirty {
			want += " dirty"
		}
	}
	r := Run(t, bin, append(args, "-version")...)
	name := filepath.Base(bin)
	if r.Code != 0 || r.Stderr != "" || !strings.HasPrefix(r.Stdout, name+" "+want+" go") || strings.Count(r.Stdout, "\n") != 1 {
		t.Errorf("%s %q -version: exit %d, stdout %q, stderr %q; want %q (go version -m:\n%s)", name, args, r.Code, r.Stdout, r.Stderr, name+" "+want+" go…", out)
	}
}

// BuildInCheckout builds pkg (such as "./cmd/record", named name) in a
// fresh clone of the checkout HEAD of dir is in, with -buildvcs=true, and
// returns the binary and the clone's revision; dirty makes the clone's
// README differ from HEAD first. It skips the test where git cannot clone.
func BuildInCheckout(t *testing.T, dir, pkg, name string, dirty bool) (bin, rev string) {
	t.Helper()
	top, err := exec.Command("git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", "--shared", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Skipf("git clone: %v: %s", err, out)
	}
	if dirty {
		f, err := os.OpenFile(filepath.Join(clone, "README.md"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("\nan uncommitted change\n")
		f.Close()
	}
	bin = filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, pkg)
	build.Dir = clone
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", clone, err, out)
	}
	out, err := exec.Command("git", "-C", clone, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return bin, strings.TrimSpace(string(out))
}
