package trace

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/rsp"
)

// TestLiveArchTrace runs testdata/frames.c of package guest under QEMU
// (TCG) for aarch64, riscv64 and s390x with "-d cpu" one instruction per block,
// single-steps it through the gdbstub reading every core register, and
// checks that the parsed log has, state by state, the same PC and
// registers as the gdbstub showed before each step.
func TestLiveArchTrace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		arch, triple, text string
		flags              []string
		spec               qemu.Spec
		regs               int // ArchRegNames compared with the gdbstub's
	}{
		{"aarch64", "aarch64-linux-gnu", "0x40080000", nil, qemu.Spec{Machine: "virt", CPU: "cortex-a57"}, 32},
		{"riscv64", "riscv64-linux-gnu", "0x80000000", []string{"-mcmodel=medany"}, qemu.Spec{Machine: "virt", BIOS: "none"}, 32},
		// All of s390x's: r0-r15, the PSW mask (with the condition code
		// the gdbstub computes as the log does) and cr0-cr15.
		{"s390x", "s390x-linux-gnu", "0x20000", []string{"-mbackchain"}, qemu.Spec{Machine: "s390-ccw-virtio", CPU: "qemu"}, 33},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			t.Parallel()
			gcc := tc.triple + "-gcc"
			if _, err := exec.LookPath(gcc); err != nil {
				t.Skipf("%s not installed (Debian package gcc-%s): %v", gcc, tc.triple, err)
			}
			qemutest.Require(t, tc.arch, "tcg")
			dir := t.TempDir()
			elf := filepath.Join(dir, "frames")
			args := append([]string{"-O2", "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-no-pie",
				"-Wl,-Ttext=" + tc.text, "-o", elf, filepath.Join("..", "internal", "guest", "testdata", "frames.c")}, tc.flags...)
			if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", gcc, err, out)
			}
			spec := tc.spec
			spec.Arch, spec.Accel, spec.Memory, spec.Kernel = tc.arch, "tcg", "128M", elf
			spec.Trace = filepath.Join(dir, "cpu.log")
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			inst, err := qemu.Start(ctx, spec, qemu.Options{Name: t.Name()})
			if err != nil {
				t.Fatalf("start qemu: %v", err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					inst.Close(context.Background())
				}
			})
			c, err := rsp.Dial(ctx, "unix", inst.GDBSocket)
			if err != nil {
				t.Fatal(err)
			}
			names := ArchRegNames(tc.arch)
			pcName := "pc"
			if tc.arch == "s390x" {
				pcName = "pswa"
			}
			const steps = 60
			var want []map[string]uint64
			for range steps {
				regs, err := c.ReadRegisterSet(ctx, append([]string{pcName}, names[:tc.regs]...)...)
				if err != nil {
					t.Fatal(err)
				}
				m := map[string]uint64{}
				for n, v := range regs {
					m[n], _ = v.Uint64()
				}
				want = append(want, m)
				if _, err := c.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
			if err := inst.Close(ctx); err != nil { // flushes the log
				t.Fatal(err)
			}
			closed = true
			f, err := os.Open(spec.Trace)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := NewArchParser(tc.arch, f)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range want {
				var s ArchState
				if err := p.Next(&s); err != nil {
					t.Fatalf("state %d: %v", i, err)
				}
				if s.PC != w[pcName] {
					t.Fatalf("state %d: pc %#x, gdbstub %#x", i, s.PC, w[pcName])
				}
				for j, n := range names[:tc.regs] {
					if s.Regs[j] != w[n] {
						t.Errorf("state %d at %#x: %s %#x, gdbstub %#x", i, s.PC, n, s.Regs[j], w[n])
					}
				}
			}
			t.Logf("%d states match the gdbstub's single steps", len(want))
		})
	}
}
