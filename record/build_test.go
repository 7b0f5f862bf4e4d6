package record_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestBuildsForDarwin: the library packages build for an operating system
// without netlink, where their Linux parts are stubs that fail with one
// "unsupported" error.
func TestBuildsForDarwin(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	cmd := exec.Command(gotool, "build", "./record/...", "./imp2/...", "./pcapnl/...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=darwin go build: %v\n%s", err, out)
	}
}
