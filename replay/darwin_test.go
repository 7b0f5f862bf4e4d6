package replay_test

import (
	"os"
	"os/exec"
	"testing"
)

// The library packages build for other systems: the Linux-only parts are
// behind build tags, with stubs that say so.
func TestBuildsOnDarwin(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	cmd := exec.Command(gotool, "build", "./...", "../imp2/...", "../pcapnl/...")
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=darwin go build: %v\n%s", err, out)
	}
}
