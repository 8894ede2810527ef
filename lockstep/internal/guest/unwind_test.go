package guest_test

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// unwindRegs are the registers the snapshot takes from gdb.
var unwindRegs = strings.Fields("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip")

// stackWords is how much stack the snapshot copies (8-byte words).
const stackWords = 128

// TestBacktraceCFI builds testdata/unwind.c with gcc without frame
// pointers, once with .eh_frame (-fasynchronous-unwind-tables) and once
// with only .debug_frame, runs it natively under gdb to a breakpoint,
// copies gdb's registers and stack into a fake target, and checks that
// Backtrace finds the same frames as gdb's bt (inlined calls included),
// every caller by CFI.
func TestBacktraceCFI(t *testing.T) {
	t.Parallel()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc not installed (Debian package gcc), needed to build the fixture: %v", err)
	}
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Skipf("gdb not installed (Debian package gdb), needed for the reference backtrace: %v", err)
	}
	for _, b := range unwindBuilds {
		elf := buildUnwind(t, gcc, b.name, b.flags)
		tab, err := symbols.Load(elf)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := tab.CFI(); err != nil || c.Len() == 0 {
			t.Fatalf("%s: no CFI (%v)", b.name, err)
		}
		for _, stop := range unwindStops {
			t.Run(b.name+"/"+strings.TrimPrefix(stop, "*"), func(t *testing.T) {
				t.Parallel()
				snap := gdbSnapshot(t, gdb, elf, stop)
				g := fakeGuest(t, tab, snap)
				frames, note, err := g.Backtrace(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				got := expandFrames(frames)
				if note != "" {
					t.Errorf("note %q", note)
				}
				// Where a function's entry has several line rows (brace,
				// first statement, brace again), the stopped frame's line
				// is addr2line's (the last row, see symbols' tests) and gdb
				// takes the last statement row: compare the function only.
				if len(got) > 0 && len(snap.bt) > 0 {
					got[0], snap.bt[0] = strings.Fields(got[0])[0], strings.Fields(snap.bt[0])[0]
				}
				if strings.Join(got, "\n") != strings.Join(snap.bt, "\n") {
					t.Errorf("backtrace at %s:\n ours %q\n  gdb %q", stop, got, snap.bt)
				}
				for i, f := range frames {
					want := guest.HowCFI
					if i == len(frames)-1 {
						want = guest.HowPC
					}
					if f.How != want || f.Uncertain {
						t.Errorf("frame %s: how %q uncertain %v, want %q", f.Location, f.How, f.Uncertain, want)
					}
				}
			})
		}
	}
}

// unwindBuilds are the builds of testdata/unwind.c: no frame pointers,
// CFI in .eh_frame or only in .debug_frame.
var unwindBuilds = []struct {
	name, section string
	flags         []string
}{
	{"eh_frame", ".eh_frame", []string{"-fasynchronous-unwind-tables"}},
	{"debug_frame", ".debug_frame", []string{"-fno-asynchronous-unwind-tables", "-fno-unwind-tables"}},
}

// unwindStops are where the fixture is stopped: function entries (before
// any push) and just after mid's and top's stack adjustments.
var unwindStops = []string{"leaf", "*mid", "*mid+4", "top", "*top+4"}

// buildUnwind builds testdata/unwind.c with gcc, without frame pointers.
func buildUnwind(t testing.TB, gcc, name string, flags []string) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("testdata", "unwind.c"))
	if err != nil {
		t.Fatal(err)
	}
	elf := filepath.Join(t.TempDir(), "unwind-"+name)
	args := append([]string{"-O2", "-g", "-fomit-frame-pointer", "-fcf-protection=none", "-nostdlib", "-static", "-no-pie", "-o", elf, src}, flags...)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, out)
	}
	return elf
}

// BenchmarkBacktrace measures Backtrace at leaf in the eh_frame build
// (4 frames, 3 unwound by CFI) on the fake target, whose reads cost
// nothing: what is left is the unwinder's own cost. reads/frame counts
// the gdbstub requests a frame costs (each about 0.1 ms on a real QEMU).
func BenchmarkBacktrace(b *testing.B) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		b.Skipf("gcc not installed: %v", err)
	}
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		b.Skipf("gdb not installed: %v", err)
	}
	bu := unwindBuilds[0]
	elf := buildUnwind(b, gcc, bu.name, bu.flags)
	tab, err := symbols.Load(elf)
	if err != nil {
		b.Fatal(err)
	}
	snap := gdbSnapshot(b, gdb, elf, "leaf")
	g := fakeGuest(b, tab, snap)
	var frames, packets int
	for b.Loop() {
		p0 := g.T.Packets()
		fs, _, err := g.Backtrace(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		frames += len(fs)
		packets += g.T.Packets() - p0
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
	b.ReportMetric(float64(packets)/float64(frames), "reads/frame")
}

// snapshot is what gdb saw at a breakpoint.
type snapshot struct {
	regs  map[string]uint64
	stack []byte
	bt    []string // "func file:line", innermost first
}

var (
	gdbBTLine  = regexp.MustCompile(`^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*\) at (\S+):(\d+)$`)
	gdbRegLine = regexp.MustCompile(`^(\w+)\s+(0x[0-9a-f]+)\s`)
	gdbMemLine = regexp.MustCompile(`^0x[0-9a-f]+(?: <[^>]*>)?:\s+(.*)$`)
)

// gdbSnapshot runs elf under gdb to stop (a "break" argument) and returns
// its registers, stack and bt.
func gdbSnapshot(t testing.TB, gdb, elf, stop string) snapshot {
	t.Helper()
	out, err := exec.Command(gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "break "+stop, "-ex", "run",
		"-ex", "info registers "+strings.Join(unwindRegs, " "), "-ex", fmt.Sprintf("x/%dgx $rsp", stackWords), "-ex", "bt", elf).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	s := snapshot{regs: map[string]uint64{}}
	for _, line := range strings.Split(string(out), "\n") {
		if m := gdbBTLine.FindStringSubmatch(line); m != nil {
			s.bt = append(s.bt, m[1]+" "+path.Base(m[2])+":"+m[3])
			continue
		}
		if m := gdbRegLine.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseUint(m[2][2:], 16, 64)
			if err != nil {
				t.Fatalf("gdb line %q: %v", line, err)
			}
			s.regs[m[1]] = v
			continue
		}
		if m := gdbMemLine.FindStringSubmatch(line); m != nil {
			for _, w := range strings.Fields(m[1]) {
				v, err := strconv.ParseUint(strings.TrimPrefix(w, "0x"), 16, 64)
				if err != nil {
					t.Fatalf("gdb line %q: %v", line, err)
				}
				s.stack = fmt.Appendf(s.stack, "%s", le64(v))
			}
		}
	}
	if len(s.regs) != len(unwindRegs) || len(s.stack) != 8*stackWords || len(s.bt) < 2 {
		t.Fatalf("gdb output: %d registers, %d stack bytes, %d frames:\n%s", len(s.regs), len(s.stack), len(s.bt), out)
	}
	return s
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// fakeGuest is a guest stopped in the state of snap: its registers, its
// stack readable, nothing else.
func fakeGuest(t testing.TB, tab *symbols.Table, snap snapshot) *guest.Guest {
	t.Helper()
	regs := map[string]uint64{"cr0": 0x80000011} // protected mode, paging
	for n, v := range snap.regs {
		regs[n] = v
	}
	sp := snap.regs["rsp"]
	ft, fm, err := fake.New(fake.Program{
		States: []fake.State{{PC: snap.regs["rip"], Regs: regs, Mem: map[uint64][]byte{sp: snap.stack}}},
		Mapped: []fake.Range{{Addr: sp, Len: uint64(len(snap.stack))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := guest.New(0, "a", scenario.Guest{}, ft, fm, tab, guest.Timeouts{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// expandFrames lists frames as gdb's bt does: innermost first, each
// inlined call a frame of its own, as "func file:line".
func expandFrames(frames []compare.Frame) []string {
	var out []string
	for i := len(frames) - 1; i >= 0; i-- {
		l := frames[i].Location
		file, line := l.File, l.Line
		for _, in := range l.Inlined {
			out = append(out, fmt.Sprintf("%s %s:%d", in.Function, path.Base(file), line))
			file, line = in.File, in.Line
		}
		out = append(out, fmt.Sprintf("%s %s:%d", l.Symbol, path.Base(file), line))
	}
	return out
}

// TestBacktraceORC unwinds testdata/orc.S, a program with hand-written ORC
// tables in the kernel's 6.1 layout and no CFI or frame pointers, through
// the fake target: every caller must be found by ORC, and _start's
// end-of-stack entry ends the path.
func TestBacktraceORC(t *testing.T) {
	t.Parallel()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc not installed (Debian package gcc), needed to build the fixture: %v", err)
	}
	elf := filepath.Join(t.TempDir(), "orc")
	if out, err := exec.Command(gcc, "-nostdlib", "-static", "-no-pie", "-o", elf, filepath.Join("testdata", "orc.S")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	tab, err := symbols.Load(elf)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(name string, off uint64) uint64 {
		s, ok := tab.Lookup(name)
		if !ok {
			t.Fatalf("no symbol %s", name)
		}
		return s.Addr + off
	}
	// The stack at leaf+4: 0x18 bytes of leaf's frame, the return into
	// top, top's saved rbx, the return into _start.
	const sp = 0x7000
	stack := make([]byte, 0x40)
	copy(stack[0x18:], le64(addr("top", 6)))
	copy(stack[0x20:], le64(0xdead))
	copy(stack[0x28:], le64(addr("_start", 5)))
	tests := []struct {
		name   string
		pc, sp uint64
		want   []string
	}{
		{"leaf body", addr("leaf", 4), sp, []string{"_start+0x5", "top+0x6", "leaf+0x4"}},
		{"leaf entry", addr("leaf", 0), sp + 0x18, []string{"_start+0x5", "top+0x6", "leaf"}},
		{"top after push", addr("top", 1), sp + 0x20, []string{"_start+0x5", "top+0x1"}},
		{"_start", addr("_start", 0), sp + 0x30, []string{"_start"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ft, fm, err := fake.New(fake.Program{
				States: []fake.State{{PC: tc.pc, Regs: map[string]uint64{"rip": tc.pc, "rsp": tc.sp, "rbp": 0x1234, "cr0": 0x80000011},
					Mem: map[uint64][]byte{sp: stack}}},
				Mapped: []fake.Range{{Addr: sp, Len: uint64(len(stack))}},
			})
			if err != nil {
				t.Fatal(err)
			}
			g, err := guest.New(0, "a", scenario.Guest{}, ft, fm, tab, guest.Timeouts{})
			if err != nil {
				t.Fatal(err)
			}
			frames, note, err := g.Backtrace(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, f := range frames {
				got = append(got, f.Location.String())
				want := guest.HowORC
				if i == len(frames)-1 {
					want = guest.HowPC
				}
				if f.How != want {
					t.Errorf("frame %s: how %q, want %q", f.Location, f.How, want)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") || note != "" {
				t.Errorf("backtrace %q (note %q), want %q", got, note, tc.want)
			}
		})
	}
}
