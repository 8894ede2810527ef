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
type frameArch struct {
	arch, triple, text string
	flags              []string
	spec               qemu.Spec
}

var frameArchs = []frameArch{
	{"aarch64", "aarch64-linux-gnu", "0x40080000", nil,
		qemu.Spec{Arch: "aarch64", Machine: "virt", CPU: "cortex-a57"}},
	{"riscv64", "riscv64-linux-gnu", "0x80000000", []string{"-mcmodel=medany"},
		qemu.Spec{Arch: "riscv64", Machine: "virt", BIOS: "none"}},
	{"s390x", "s390x-linux-gnu", "0x10000", []string{"-mbackchain"},
		qemu.Spec{Arch: "s390x", Machine: "s390-ccw-virtio", CPU: "qemu"}},
}

// framesGuest builds testdata/frames.c for fa (with call-frame
// information when cfi is set, else none: frame pointers and the back
// chain only), starts it under QEMU (TCG) paused at its entry and returns
// the guest attached to its gdbstub.
func framesGuest(t *testing.T, fa frameArch, cfi bool) (*guest.Guest, context.Context) {
	t.Helper()
	gcc := fa.triple + "-gcc"
	if _, err := exec.LookPath(gcc); err != nil {
		t.Skipf("%s not installed (Debian package gcc-%s): %v", gcc, fa.triple, err)
	}
	qemutest.Require(t, fa.arch, "tcg")
	elf := filepath.Join(t.TempDir(), "frames-"+fa.arch)
	unwind := []string{"-fno-asynchronous-unwind-tables", "-fno-unwind-tables"}
	if cfi {
		unwind = []string{"-fasynchronous-unwind-tables"}
	}
	args := append([]string{"-O2", "-fno-omit-frame-pointer", "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-no-pie",
		"-Wl,-Ttext=" + fa.text, "-Wl,--build-id=none", "-o", elf, filepath.Join("testdata", "frames.c")}, fa.flags...)
	args = append(args, unwind...)
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
	t.Cleanup(cancel)
	c, err := rsp.Dial(ctx, "unix", inst.GDBSocket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g, err := guest.New(0, "a", scenario.Guest{}, c, nil, tab, guest.Timeouts{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Arch.Name != fa.arch {
		t.Fatalf("guest arch %s, want %s", g.Arch.Name, fa.arch)
	}
	return g, ctx
}

// runTo continues g to the breakpoint at sym.
func runTo(t *testing.T, ctx context.Context, g *guest.Guest, sym string) {
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

// TestFrameWalkArchs runs testdata/frames.c under QEMU (TCG) for aarch64,
// riscv64 and s390x, built without call-frame information and with it, and
// single-steps through every instruction of mid and of the leaf it calls:
// at each one the backtrace must be _start, kmain, top, mid (and leaf),
// whether the pc is in a prologue, a body, an epilogue or a leaf without a
// frame record. Without CFI the callers are found by the frame-pointer
// chain (s390x: the back chain and the prologue) and the link register;
// with it, by CFI (the outermost, _start, has none). Stopped in nr, called
// by dies as its last instruction (noreturn), the caller must be dies, not
// the function after.
func TestFrameWalkArchs(t *testing.T) {
	t.Parallel()
	for _, fa := range frameArchs {
		for _, cfi := range []bool{false, true} {
			name, how := fa.arch+"/fp", guest.HowFP
			if cfi {
				name, how = fa.arch+"/cfi", guest.HowCFI
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				g, ctx := framesGuest(t, fa, cfi)
				names := func() ([]string, string) {
					t.Helper()
					frames, note, err := g.Backtrace(ctx)
					if err != nil {
						t.Fatal(err)
					}
					var out []string
					for i, f := range frames {
						out = append(out, f.Location.Symbol)
						if i < len(frames)-1 && i > 0 && (f.How != how || f.Uncertain) {
							t.Errorf("at %s: frame %s found by %q (uncertain %v), want %s", frames[len(frames)-1].Location, f.Location, f.How, f.Uncertain, how)
						}
					}
					return out, note
				}
				runTo(t, ctx, g, "mid")
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
				runTo(t, ctx, g, "nr")
				got, note := names()
				if want := []string{"_start", "kmain", "dies", "nr"}; !slices.Equal(got, want) {
					t.Errorf("in nr: backtrace %q, want %q (note %q)", got, want, note)
				}
				frames, _, _ := g.Backtrace(ctx)
				for _, f := range frames {
					t.Logf("nr frame %s %s", f.Location, f.How)
				}
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
}

// TestWatchTimingArchs checks Arch.WatchBefore against QEMU: a write
// watchpoint on sink stops at mid's store to it, and the stop is before
// the store (pc at it, memory unchanged) or after it (memory written, the
// store just behind pc) as the architecture says.
func TestWatchTimingArchs(t *testing.T) {
	t.Parallel()
	for _, fa := range frameArchs {
		t.Run(fa.arch, func(t *testing.T) {
			t.Parallel()
			g, ctx := framesGuest(t, fa, false)
			sym, ok := g.Syms.Lookup("sink")
			if !ok {
				t.Fatal("no symbol sink")
			}
			if err := g.T.InsertBreakpoint(ctx, rsp.WatchWrite, sym.Addr, 8); err != nil {
				t.Fatalf("watch sink: %v", err)
			}
			st, err := g.Cont(ctx)
			if err != nil || st.Exited() {
				t.Fatalf("continue to the watchpoint: %v", err)
			}
			if st.Watch != "watch" {
				t.Fatalf("stop %+v is not a write watchpoint", st)
			}
			pc, err := g.PC(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mem, err := g.T.ReadMemory(ctx, sym.Addr, 8)
			if err != nil {
				t.Fatal(err)
			}
			written := g.Word(mem) != 0 // sink starts at 0; mid stores leaf's 3*(0+1)+0
			here, _ := g.Disasm(ctx, pc)
			_, before, _, okb := g.InsnBefore(pc, 0)
			t.Logf("stop at %s: %q (previous %q), sink %#x", g.Loc(pc), here, before, g.Word(mem))
			if written == g.Arch.WatchBefore {
				t.Errorf("sink written %v at the stop, but WatchBefore is %v", written, g.Arch.WatchBefore)
			}
			isStore := func(text string) bool {
				m, _, _ := strings.Cut(text, " ")
				return strings.HasPrefix(m, "st") || m == "sd" || m == "sw" || m == "sh" || m == "sb"
			}
			switch {
			case g.Arch.WatchBefore && !isStore(here):
				t.Errorf("WatchBefore, but the instruction at pc is %q, not the store", here)
			case !g.Arch.WatchBefore && (!okb || !isStore(before)):
				t.Errorf("stop after the store, but the instruction before pc is %q, not a store", before)
			}
		})
	}
}
