package guest_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// frameArchs are the non-x86 targets of testdata/frames.c: cross
// compiler, link address, flags, and the QEMU machine that runs the ELF.
var frameArchs = []struct {
	arch, triple, text string
	flags              []string
	spec               qemu.Spec
}{
	{"aarch64", "aarch64-linux-gnu", "0x40080000", nil,
		qemu.Spec{Arch: "aarch64", Machine: "virt", CPU: "cortex-a57"}},
	{"riscv64", "riscv64-linux-gnu", "0x80000000", []string{"-mcmodel=medany"},
		qemu.Spec{Arch: "riscv64", Machine: "virt", BIOS: "none"}},
	{"s390x", "s390x-linux-gnu", "0x10000", []string{"-mbackchain"},
		qemu.Spec{Arch: "s390x", Machine: "s390-ccw-virtio", CPU: "qemu"}},
}

// TestFrameWalkArchs runs testdata/frames.c, built without call-frame
// information, under QEMU (TCG) for aarch64, riscv64 and s390x, and
// single-steps through every instruction of mid and of the leaf it calls:
// at each one the backtrace must be _start, kmain, top, mid (and leaf),
// found by the frame-pointer chain (s390x: the back chain) and the link
// register, whether the pc is in a prologue, a body, an epilogue or a leaf
// without a frame record. Stopped in nr, called by dies as its last
// instruction (noreturn), the caller must be dies, not the function after.
func TestFrameWalkArchs(t *testing.T) {
	t.Parallel()
	for _, fa := range frameArchs {
		t.Run(fa.arch, func(t *testing.T) {
			t.Parallel()
			gcc := fa.triple + "-gcc"
			if _, err := exec.LookPath(gcc); err != nil {
				t.Skipf("%s not installed (Debian package gcc-%s): %v", gcc, fa.triple, err)
			}
			qemutest.Require(t, fa.arch, "tcg")
			elf := filepath.Join(t.TempDir(), "frames-"+fa.arch)
			args := append([]string{"-O2", "-fno-omit-frame-pointer", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
				"-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-no-pie", "-Wl,-Ttext=" + fa.text, "-Wl,--build-id=none",
				"-o", elf, filepath.Join("testdata", "frames.c")}, fa.flags...)
			if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", gcc, err, out)
			}
			tab, err := symbols.Load(elf)
			if err != nil {
				t.Fatal(err)
			}
			spec := fa.spec
			spec.Accel, spec.Memory, spec.Kernel = "tcg", "128M", elf
			inst := qemutest.Start(t, spec)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			c, err := rsp.Dial(ctx, "unix", inst.GDBSocket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			g, err := guest.New(0, "a", scenario.Guest{}, c, nil, tab, guest.Timeouts{})
			if err != nil {
				t.Fatal(err)
			}
			if g.Arch.Name != fa.arch {
				t.Fatalf("guest arch %s, want %s", g.Arch.Name, fa.arch)
			}
			runTo := func(sym string) {
				t.Helper()
				addr, err := g.Resolve(sym)
				if err != nil {
					t.Fatal(err)
				}
				if err := g.Insert(ctx, rsp.Software, addr); err != nil {
					t.Fatal(err)
				}
				if st, err := g.Cont(ctx); err != nil || st.Exited() {
					t.Fatalf("continue to %s: %v", sym, err)
				}
				if err := g.Remove(ctx, addr); err != nil {
					t.Fatal(err)
				}
			}
			names := func() ([]string, string) {
				t.Helper()
				frames, note, err := g.Backtrace(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for i, f := range frames {
					out = append(out, f.Location.Symbol)
					if i < len(frames)-1 && (f.How != guest.HowFP || f.Uncertain) {
						t.Errorf("at %s: frame %s found by %q (uncertain %v), want fp", frames[len(frames)-1].Location, f.Location, f.How, f.Uncertain)
					}
				}
				return out, note
			}
			runTo("mid")
			steps := 0
			for ; steps < 200; steps++ {
				pc, err := g.PC(ctx)
				if err != nil {
					t.Fatal(err)
				}
				l, _ := g.Symbolize(pc)
				if l.Symbol != "mid" && l.Symbol != "leaf" {
					break // back in top
				}
				want := []string{"_start", "kmain", "top", "mid"}
				if l.Symbol == "leaf" {
					want = append(want, "leaf")
				}
				got, note := names()
				if !slices.Equal(got, want) {
					t.Errorf("at %s: backtrace %q, want %q (note %q)", l, got, want, note)
				}
				if _, err := g.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if steps < 8 {
				t.Errorf("only %d instructions of mid and leaf stepped", steps)
			}
			t.Logf("%d pcs in mid and leaf walked", steps)
			runTo("nr")
			got, note := names()
			if want := []string{"_start", "kmain", "dies", "nr"}; !slices.Equal(got, want) {
				t.Errorf("in nr: backtrace %q, want %q (note %q)", got, want, note)
			}
			frames, _, _ := g.Backtrace(ctx)
			if n := len(frames); n >= 2 {
				if l := frames[n-2].Location; l.Symbol != "dies" || l.Offset == 0 {
					t.Errorf("noreturn caller shown as %s (%s), want dies+%#x", l, fmt.Sprint(l.Addr), l.Offset)
				}
			}
			if testing.Verbose() {
				t.Logf("in nr: %s", strings.Join(got, " <- "))
			}
		})
	}
}
