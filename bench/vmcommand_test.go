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
		// -h as every imp2 command answers it: usage on stdout, exit 0,
		// not a namespace or a job file called -h.
		{[]string{GateConsumerCommand, "-h"}, true, ExitOK, vmCommandUsage[GateConsumerCommand], ""},
		{[]string{GateConsumerCommand, "--help"}, true, ExitOK, vmCommandUsage[GateConsumerCommand], ""},
		{[]string{GuestCommand, "-help"}, true, ExitOK, vmCommandUsage[GuestCommand], ""},
	} {
		var o, e bytes.Buffer
		code, ok := VMCommand(c.args, strings.NewReader(""), &o, &e)
		if ok != c.ok || code != c.code || o.String() != c.stdout || !strings.HasPrefix(e.String(), c.errs) || strings.Count(e.String(), "\n") > 1 {
			t.Errorf("%q: ok %v exit %d, stdout %q, stderr %q; want %v %d %q %q", c.args, ok, code, o.String(), e.String(), c.ok, c.code, c.stdout, c.errs)
		}
	}
}

// TestVMCommandHelp: each internal command's -h starts with its usage
// line and fits 80 columns, as package cli's help does.
func TestVMCommandHelp(t *testing.T) {
	for _, name := range []string{GuestCommand, GateConsumerCommand} {
		var o, e bytes.Buffer
		if code, _ := VMCommand([]string{name, "-h"}, strings.NewReader(""), &o, &e); code != ExitOK || e.Len() > 0 {
			t.Errorf("%s -h: exit %d, stderr %q", name, code, e.String())
		}
		if !strings.HasPrefix(o.String(), "usage: imp2-bench "+name+" ") {
			t.Errorf("%s -h: %q, want its usage line first", name, o.String())
		}
		for _, l := range strings.Split(o.String(), "\n") {
			if len(l) > 80 {
				t.Errorf("%s -h: line over 80 columns: %q", name, l)
			}
		}
	}
}
