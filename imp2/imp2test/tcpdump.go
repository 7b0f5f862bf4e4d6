package imp2test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var tcpdumpStamp = regexp.MustCompile(`(?m)^(\d+\.\d{9}) `)

// Tcpdump reads path with tcpdump -r, the reader of classic pcap that
// .pcap traces are written for, and returns the nanosecond timestamp
// ("sec.nsec") of every packet it printed. It fails the test if tcpdump
// fails or does not see LINKTYPE_NETLINK. Without tcpdump it returns nil
// and logs so, or fails when CI is set (scripts/deps.sh installs it).
func Tcpdump(t testing.TB, path string) []string {
	t.Helper()
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tcpdump not installed and CI is set (scripts/deps.sh installs it)")
		}
		t.Log("tcpdump not installed: tcpdump -r not checked (scripts/deps.sh installs it)")
		return nil
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tcpdump, "-r", path, "-n", "-tt", "--time-stamp-precision=nano")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.Contains(stderr.String(), "link-type NETLINK") {
		t.Fatalf("tcpdump -r %s: %v\n%s", path, err, stderr.String())
	}
	var stamps []string
	for _, m := range tcpdumpStamp.FindAllStringSubmatch(string(out), -1) {
		stamps = append(stamps, m[1])
	}
	if len(stamps) == 0 {
		t.Fatalf("tcpdump -r %s printed no packets:\n%s", path, out)
	}
	return stamps
}
