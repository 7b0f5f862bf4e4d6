package vm

import (
	"regexp"
	"testing"
)

// TestDmesgProblems: the guest's problem filter catches the kernel's own
// warnings, RCU stall reports included, and not the boot lines that merely
// name RCU stalls (the command line carries stallTimeout).
func TestDmesgProblems(t *testing.T) {
	re := regexp.MustCompile(dmesgProblems)
	for _, l := range []string{
		"rcu: INFO: rcu_preempt self-detected stall on CPU",
		"rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
		"WARNING: CPU: 1 PID: 77 at net/netlink/af_netlink.c:1974",
		"BUG: kernel NULL pointer dereference, address: 0000000000000010",
	} {
		if !re.MatchString(l) {
			t.Errorf("not reported: %q", l)
		}
	}
	for _, l := range []string{
		"Kernel command line: console=ttyS0 panic=-1 quiet rdinit=/init " + stallTimeout,
		"\tRCU CPU stall warnings timeout set to 120 (rcu_cpu_stall_timeout).",
	} {
		if re.MatchString(l) {
			t.Errorf("reported as a problem: %q", l)
		}
	}
}
