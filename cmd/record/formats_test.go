package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imp2/imp2/imp2/imp2test"
	"github.com/imp2/imp2/pcapnl"
)

// TestFormatByName records into every kind of name and checks that the
// file holds the format and compression the name asks for (pcapnl's
// rule), the whole conversation in each, the warning for classic pcap,
// and that tcpdump -r reads the .pcap.
func TestFormatByName(t *testing.T) {
	dir := t.TempDir()
	const n = 50
	for _, tc := range []struct {
		name         string
		flags        []string
		comp, format string
	}{
		{"t.pcapng.zst", nil, "zstd", "pcapng"},
		{"t.pcapng.gz", nil, "gzip", "pcapng"},
		{"t.pcapng", nil, "none", "pcapng"},
		{"t", nil, "none", "pcapng"},
		{"t.pcap", nil, "none", "pcap"},
		{"t.pcap.gz", nil, "gzip", "pcap"},
		{"z.pcap", []string{"-compress", "zstd"}, "zstd", "pcap"},
	} {
		p := newProducer(t)
		out := filepath.Join(dir, tc.name)
		r := startRecord(t, p.args(append(tc.flags, "-o", out, "-count", fmt.Sprint(n), "-json")...)...)
		p.waitConsumers(t, 1)
		p.send(t, n)
		if code := r.wait(t); code != exitOK {
			t.Fatalf("%s: exit status %d; stderr:\n%s", tc.name, code, r.stderr.String())
		}
		frames, rd, _ := readTraceFile(t, out, false)
		if rd.Compression() != tc.comp || rd.Format() != tc.format {
			t.Errorf("-o %s %v: %s %s, want %s %s", tc.name, tc.flags, rd.Compression(), rd.Format(), tc.comp, tc.format)
		}
		checkConversation(t, frames, r.summary(t).Port, n)
		warned := strings.Contains(r.stderr.String(), "imp2-record: warning: -o "+out+": classic pcap keeps no per-frame drop counts")
		if warned != (tc.format == "pcap") {
			t.Errorf("-o %s: stderr %q", tc.name, r.stderr.String())
		}
		if tc.name != "t.pcap" {
			continue
		}
		if stamps := imp2test.Tcpdump(t, out); stamps != nil && len(stamps) != n+4 {
			t.Errorf("tcpdump -r %s: %d packets, want %d", out, len(stamps), n+4)
		}
	}
}

// TestDissectorOnRecording records from a NETLINK_USERSOCK producer and
// reads the trace with tshark and tools/wireshark/imp2.lua, no
// preference set: every frame is found as imp2 on family 2, the events
// with their src and dest in the Source and Destination columns.
func TestDissectorOnRecording(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (scripts/deps.sh installs it)")
	}
	p := newProducer(t)
	out := filepath.Join(t.TempDir(), "usersock.pcapng.zst")
	const n = 20
	r := startRecord(t, p.args("-o", out, "-count", fmt.Sprint(n), "-q")...)
	p.waitConsumers(t, 1)
	p.send(t, n)
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	lua, _ := filepath.Abs("../../tools/wireshark/imp2.lua")
	cmd := exec.Command(tshark, "-X", "lua_script:"+lua, "-r", out, "-T", "fields", "-E", "separator=|",
		"-e", "netlink.family", "-e", "_ws.col.Protocol", "-e", "_ws.col.Source", "-e", "_ws.col.Destination",
		"-e", "imp2.type", "-e", "imp2.seq", "-e", "imp2.stats.self_sent")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil || strings.Contains(stderr.String(), "Lua") {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []string{"0x0002|IMP2|||0|1|"}
	for i := uint32(1); i <= n; i++ {
		ev := imp2test.Event(i)
		want = append(want, fmt.Sprintf("0x0002|IMP2|%s|%s|1|%d|", ev.Src, ev.Dest, i))
	}
	want = append(want, "0x0002|IMP2|||16|2|", fmt.Sprintf("0x0002|IMP2|||17|2|%d", n), "0x0002|IMP2|||2|3|")
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("tshark with imp2.lua:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// TestRotatePcap: a rotated set named .pcap is classic pcap file after
// file (the number goes before the extension), each one read whole by
// pcapnl and by tcpdump -r, together the whole conversation.
func TestRotatePcap(t *testing.T) {
	p := newProducer(t)
	dir := t.TempDir()
	const n = 20000
	r := startRecord(t, p.args("-o", filepath.Join(dir, "t.pcap"), "-C", "128K", "-buffer", "128K", "-count", fmt.Sprint(n), "-json")...)
	p.waitConsumers(t, 1)
	p.send(t, n)
	if code := r.wait(t); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, r.stderr.String())
	}
	files, _ := setFiles(t, dir)
	if len(files) < 3 || files[1] != filepath.Join(dir, "t.000001.pcap") {
		t.Fatalf("files %v: want at least 3, numbered before .pcap", files)
	}
	var all []pcapnl.Frame
	for _, path := range files {
		frames, rd, _ := readTraceFile(t, path, false)
		if rd.Format() != "pcap" || rd.Compression() != "none" {
			t.Errorf("%s: %s %s, want plain pcap", path, rd.Compression(), rd.Format())
		}
		if stamps := imp2test.Tcpdump(t, path); stamps != nil && len(stamps) != len(frames) {
			t.Errorf("tcpdump -r %s: %d packets, pcapnl %d", path, len(stamps), len(frames))
		}
		all = append(all, frames...)
	}
	checkConversation(t, all, r.summary(t).Port, n)
}
