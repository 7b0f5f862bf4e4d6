package bench

import (
	"os"
	"os/exec"
	"testing"
)

// The engine's portable part builds elsewhere: Options, the outputs and
// stubs that say "unsupported on GOOS".
func TestBuildsOnDarwin(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	cmd := exec.Command(gobin, "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "GOOS=darwin", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=darwin go build: %v\n%s", err, out)
	}
}
