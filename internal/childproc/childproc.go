// Package childproc runs a test binary again as a child process in a role
// named by an environment variable, for tests that need a second, real
// process, such as a consumer running as another user.
package childproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Dispatch runs role with the value of env and exits, when this process
// was started with env set; otherwise it returns. Call it from an init
// function of the test package, so that the role runs before any test.
func Dispatch(env string, role func(arg string)) {
	if arg, ok := os.LookupEnv(env); ok {
		role(arg)
		os.Exit(0)
	}
}

// Command returns a command that runs this test binary with env=arg, from a
// copy every user may execute (the go tool builds it in a private
// directory), so that SysProcAttr can run it as another user. The copy is
// removed when the test ends.
func Command(t testing.TB, env, arg string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "childproc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, filepath.Base(self))
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env+"="+arg)
	return cmd
}
