package vm

import (
	"slices"
	"testing"
)

// TestAccel: one qemu thread for a kernel that needs it, for -icount and
// for a boot that asks (SingleThread); multi-threaded TCG otherwise.
func TestAccel(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", Config{}, "tcg"},
		{"kernel needs one thread", Config{Kernel: Kernel{SingleThreadTCG: true}}, "tcg,thread=single"},
		{"icount", Config{ICount: "shift=0,sleep=off"}, "tcg,thread=single"},
		{"asked", Config{SingleThread: true}, "tcg,thread=single"},
	} {
		args := c.cfg.qemuArgs("initrd")
		i := slices.Index(args, "-accel")
		if i < 0 || i+1 >= len(args) || args[i+1] != c.want {
			t.Errorf("%s: qemu %v; want -accel %s", c.name, args, c.want)
		}
	}
}
