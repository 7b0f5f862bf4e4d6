package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVMCommand: the harness's own command lines are answered here and no
// others; a mistake is one line and ExitUsage; -protocol is what the host
// checks a base binary for; a job file that is not one fails naming it.
func TestVMCommand(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "job.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	for _, c := range []struct {
		args         []string
		ok           bool
		code         int
		stdout, errs string
	}{
		{[]string{"run"}, false, 0, "", ""},
		{nil, false, 0, "", ""},
		{[]string{GateConsumerCommand, "-protocol"}, true, ExitOK, GateConsumerProtocol + "\n", ""},
		{[]string{GateConsumerCommand}, true, ExitUsage, "", "imp2-bench gate-consumer: want one argument, the network namespace's name\n"},
		{[]string{GuestCommand, "a", "b"}, true, ExitUsage, "", "imp2-bench guest: want one argument, the job file\n"},
		{[]string{GuestCommand, bad}, true, ExitFailure, "", "imp2-bench guest: " + bad},
	} {
		var o, e bytes.Buffer
		code, ok := VMCommand(c.args, strings.NewReader(""), &o, &e)
		if ok != c.ok || code != c.code || o.String() != c.stdout || !strings.HasPrefix(e.String(), c.errs) || strings.Count(e.String(), "\n") > 1 {
			t.Errorf("%q: ok %v exit %d, stdout %q, stderr %q; want %v %d %q %q", c.args, ok, code, o.String(), e.String(), c.ok, c.code, c.stdout, c.errs)
		}
	}
}
