//go:build linux

// Package replayvm is imp2-replay's -vm: the same replay, run inside the
// qemu harness (internal/vm) against the module built from the checkout.
// It passes imp2-replay's own command line into the guest, so it knows
// the flags that the host side handles.
package replayvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/imp2/imp2/internal/vm"
	"github.com/imp2/imp2/replay"
)

// Run builds the module and a static imp2-replay from the checkout, boots
// the qemu harness with them and the traces (in the 9p share), runs the
// same replay inside against the real module and brings the summary, the
// log and the consumer's output back. The guest's exit status is the
// result.
func Run(c Config) int {
	logf := c.Log
	fail := func(err error) int {
		logf("-vm: %v", err)
		return replay.ExitError
	}
	co, err := vm.PrepareCheckout("imp2-replay-vm-")
	if err != nil {
		return fail(err)
	}
	defer co.Close()
	k, ko, share := co.Kernel, co.Module, co.Share
	bin, err := co.BuildGo("./cmd/replay", "imp2-replay", false)
	if err != nil {
		return fail(err)
	}
	inputs, err := replay.ExpandInputs(c.Inputs) // a rotated set goes in as its files
	if err != nil {
		return fail(err)
	}
	var guestIn []string
	for i, name := range inputs {
		g := fmt.Sprintf("in-%d", i)
		if err := copyInput(name, filepath.Join(share, g), c.Stdin); err != nil {
			return fail(err)
		}
		guestIn = append(guestIn, "-i", "/share/"+g)
	}

	files := []vm.File{
		{Guest: "/imp2-replay", Host: bin},
		{Guest: "/imp2.ko", Host: ko, Mode: 0o644},
	}
	script, files, modules, bins := c.guest(guestIn, files)
	logf("-vm: booting %s under qemu (software emulation)", k.Version)
	res, err := vm.Run(context.Background(), vm.Config{
		Kernel: k, KernelModules: modules, HostBinaries: bins, Files: files,
		ShareDir: share, Script: script, Memory: "1G", Timeout: c.Timeout,
	})
	if err != nil {
		return fail(err)
	}
	if b, err := os.ReadFile(filepath.Join(share, "log")); err == nil {
		c.Stderr.Write(b)
	}
	if b, err := os.ReadFile(filepath.Join(share, "summary")); err == nil {
		c.Stdout.Write(b)
	} else {
		logf("-vm: the replay did not run in the guest (status %d); console:\n%s", res.ExitCode, res.ConsoleTail(30))
	}
	if c.ConsumerOut != "" {
		b, err := os.ReadFile(filepath.Join(share, "consumer.out"))
		if err == nil {
			err = os.WriteFile(c.ConsumerOut, b, 0o644)
		}
		if err != nil {
			return fail(fmt.Errorf("consumer output: %w", err))
		}
	}
	logf("-vm: boot to result %.1f s, guest status %d", res.Elapsed.Seconds(), res.ExitCode)
	if len(res.Dmesg) > 0 {
		logf("-vm: the guest kernel logged problems:\n  %s", strings.Join(res.Dmesg, "\n  "))
		if res.ExitCode == replay.ExitOK {
			return replay.ExitError
		}
	}
	return res.ExitCode
}

// guest returns the guest's script and what it needs besides files: the
// module, imp2-replay on the inputs in the share, and the consumer if any.
func (c *Config) guest(inputs []string, files []vm.File) (script string, _ []vm.File, modules, bins []string) {
	args := append(inputs, GuestArgs(c.Args)...)
	modules, bins = []string{"veth"}, []string{"ip"}
	// Paths, not names: busybox sh prefers its own applets (ip) to PATH.
	var b strings.Builder
	b.WriteString("insmod /imp2.ko || exit 1\n")
	if c.Consumer != "" {
		f := strings.Fields(c.Consumer)
		files = append(files, vm.File{Guest: "/consumer", Host: f[0]})
		modules, bins = append(modules, "nf_tables"), append(bins, "nft")
		args = append(args, "-netns-dst", "imp2vm")
		if !c.MinConsumersSet {
			args = append(args, "-min-consumers", "1")
		}
		fmt.Fprintf(&b, "/usr/bin/ip netns add imp2vm || exit 1\n"+
			"/usr/bin/ip netns exec imp2vm /consumer %s >/share/consumer.out 2>&1 &\ncpid=$!\n", vm.ShellQuote(f[1:]))
	}
	fmt.Fprintf(&b, "/imp2-replay %s >/share/summary 2>/share/log\nrc=$?\n", vm.ShellQuote(args))
	if c.Consumer != "" {
		b.WriteString("sleep 0.2; kill -INT $cpid 2>/dev/null; sleep 0.2; kill -KILL $cpid 2>/dev/null; wait $cpid\n")
	}
	b.WriteString("exit $rc\n")
	return b.String(), files, modules, bins
}

func copyInput(name, dst string, stdin io.Reader) error {
	src := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		defer f.Close()
		src = f
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
