package trace

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRegSets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arch         string
		num          int
		pc, flags    string
		alias, canon string
	}{
		{"x86_64", NumRegs, "rip", "rflags", "eflags", "rflags"},
		{"aarch64", 34, "pc", "cpsr", "pstate", "cpsr"},
		{"riscv64", 50, "pc", "", "s0", "fp"},
		{"s390x", 34, "pc", "pswm", "pswa", "pc"},
	}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			t.Parallel()
			rs := ArchRegs(tt.arch)
			if rs == nil || rs.Arch() != tt.arch || rs.Num() != tt.num || rs.Num() > MaxRegs {
				t.Fatalf("ArchRegs(%s) = %+v, want %d registers", tt.arch, rs, tt.num)
			}
			if rs.Name(rs.PC()) != tt.pc || rs.Name(rs.Flags()) != tt.flags {
				t.Errorf("pc %q flags %q, want %q %q", rs.Name(rs.PC()), rs.Name(rs.Flags()), tt.pc, tt.flags)
			}
			if rs.Index(tt.alias) != rs.Index(tt.canon) || rs.Index(tt.canon) < 0 || rs.Index("nope") != -1 || rs.Name(-1) != "" || rs.Name(rs.Num()) != "" {
				t.Errorf("index of %q %d, of %q %d", tt.alias, rs.Index(tt.alias), tt.canon, rs.Index(tt.canon))
			}
			for i := range rs.Num() {
				if rs.Index(rs.Name(i)) != i {
					t.Errorf("Index(Name(%d) = %q) = %d", i, rs.Name(i), rs.Index(rs.Name(i)))
				}
			}
			if d := rs.Default(); len(d) == 0 || !bytes.Contains([]byte(strings.Join(namesOf(rs, d), " ")), []byte(tt.pc)) {
				t.Errorf("default registers %v lack the pc", namesOf(rs, d))
			}
		})
	}
	if ArchRegs("mips64") != nil {
		t.Error("mips64 has no -d cpu parser, but a register set")
	}
	if _, err := NewSource("mips64", strings.NewReader("")); err == nil {
		t.Error("NewSource(mips64) succeeded")
	}
	// s390x compares its general registers and PSW by default, not its
	// control registers (logged, compared when a scenario asks).
	if d := namesOf(ArchRegs("s390x"), ArchRegs("s390x").Default()); strings.Join(d, " ") != "r0 r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 r11 r12 r13 r14 r15 pswm pc" {
		t.Errorf("s390x default registers %v", d)
	}
}

func namesOf(rs *RegSet, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, rs.Name(i))
	}
	return out
}

// TestArchCompare compares recorded aarch64 and riscv64 logs with
// themselves and with a copy with one register changed in one state: the
// divergence names that register by its gdbstub name, the instruction
// before it is Prev, and the PC is the logged one.
func TestArchCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arch, file string
		// old, new: a unique substring of the log and its replacement.
		old, new string
		reg      string
		pc       uint64
		// mipOld/New: a change of mip in a repeated state, collapsed.
	}{
		{"aarch64", "aarch64-cpu.log", "PC=0000000040080004 X00=00000000400a4000", "PC=0000000040080004 X00=00000000400a4001", "x0", 0x40080004},
		{"riscv64", "riscv64-cpu.log", " pc       0000000000001004\n", " pc       0000000000001005\n", "pc", 0x1004},
	}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			src := func(s string) Source {
				p, err := NewSource(tt.arch, strings.NewReader(s))
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			d, err := Compare(t.Context(), src(string(data)), src(string(data)), Options{})
			if err != nil || d.Outcome != SameUntilEOF || d.Index < 3 || d.Arch != tt.arch {
				t.Fatalf("self compare: %v %v (arch %q)", d.String(), err, d.Arch)
			}
			if strings.Count(string(data), tt.old) != 1 {
				t.Fatalf("%q not once in %s", tt.old, tt.file)
			}
			changed := strings.Replace(string(data), tt.old, tt.new, 1)
			d, err = Compare(t.Context(), src(string(data)), src(changed), Options{})
			rs := ArchRegs(tt.arch)
			if err != nil || d.Outcome != Differ || len(d.Regs) != 1 || rs.Name(d.Regs[0]) != tt.reg || d.Index != 1 {
				t.Fatalf("changed: %v %v, want %s at 1", d.String(), err, tt.reg)
			}
			if d.State[0].PC != tt.pc || d.Prev[0].Seq != 0 || !strings.Contains(d.String(), " "+tt.reg+" ") {
				t.Errorf("divergence %s: pc %#x prev %d, want pc %#x", d.String(), d.State[0].PC, d.Prev[0].Seq, tt.pc)
			}
			// Logs of different architectures are not compared.
			if _, err := Compare(t.Context(), src(string(data)), NewParser(strings.NewReader("")), Options{}); err == nil {
				t.Error("compared a log with an x86 log")
			}
		})
	}
}

// TestArchRepeatedState checks that a riscv64 state logged twice is
// collapsed even when mip (a pending timer) changed in between, and that
// a change of any other register is an instruction.
func TestArchRepeatedState(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/riscv64-cpu.log")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.SplitAfter(string(data), " x31/t6   0000000000000000\n")
	first := blocks[0]
	rest := strings.Join(blocks[1:], "")
	for _, tt := range []struct {
		name, repeat string
		want         Outcome
	}{
		{"same", first, SameUntilEOF},
		{"mip changed", strings.Replace(first, " mip      0000000000000080", " mip      0000000000000000", 1), SameUntilEOF},
		{"mstatus changed", strings.Replace(first, " mstatus  0000000a00000000", " mstatus  0000000a00000008", 1), Differ},
	} {
		d, err := Compare(t.Context(), mustSource(t, "riscv64", first+tt.repeat+rest), mustSource(t, "riscv64", string(data)), Options{})
		if err != nil || d.Outcome != tt.want {
			t.Errorf("%s: %s %v, want %v", tt.name, d.String(), err, tt.want)
		}
		if tt.want == SameUntilEOF && (d.Dups != [2]uint64{1, 0} || d.Index != uint64(len(blocks)-1)) {
			t.Errorf("%s: %s with %v collapsed, want %d states and one collapsed", tt.name, d.String(), d.Dups, len(blocks)-1)
		}
		if tt.want == Differ && (d.Index != 1 || d.State[0].PC != d.Prev[0].PC) {
			t.Errorf("%s: %s, want the repeat at state 1", tt.name, d.String())
		}
	}
}

func mustSource(t testing.TB, arch, log string) Source {
	t.Helper()
	return mustSourceReader(t, arch, strings.NewReader(log))
}

// BenchmarkCompareArch measures parser plus Compare throughput on the
// recorded logs of each architecture compared with themselves, and the
// ratio of each one's instruction rate to x86's (pvh-32to64.log) measured
// in the same run.
func BenchmarkCompareArch(b *testing.B) {
	var x86Rate float64
	for _, tc := range []struct{ arch, file string }{
		{"x86_64", "pvh-32to64.log"}, {"aarch64", "aarch64-cpu.log"}, {"riscv64", "riscv64-cpu.log"}, {"s390x", "s390x-cpu.log"},
	} {
		b.Run(tc.arch, func(b *testing.B) {
			one, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				b.Fatal(err)
			}
			data := bytes.Repeat(one, max(1, 4<<20/len(one)))
			b.SetBytes(int64(2 * len(data)))
			b.ReportAllocs()
			var states uint64
			for b.Loop() {
				d, err := Compare(context.Background(), mustSource(b, tc.arch, string(data)), mustSource(b, tc.arch, string(data)), Options{})
				if err != nil || d.Outcome != SameUntilEOF {
					b.Fatalf("%v %v", d.String(), err)
				}
				states += d.Index
			}
			rate := float64(states) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "insn/s")
			if tc.arch == "x86_64" {
				x86Rate = rate
			} else if x86Rate > 0 {
				b.ReportMetric(rate/x86Rate, "ratio_to_x86")
			}
		})
	}
}

// FuzzArchCompare compares any input, read as an aarch64 or riscv64 log,
// with itself through NewSource and Compare: it never panics, and a log
// that parses is the same until its end on both sides. Seeds are in
// testdata/fuzz/FuzzArchCompare.
func FuzzArchCompare(f *testing.F) {
	addArchSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, a64 bool) {
		arch := fuzzArch(a64)
		d, err := Compare(t.Context(), mustSource(t, arch, string(data)), mustSource(t, arch, string(data)), Options{})
		if err == nil && d.Outcome != SameUntilEOF {
			t.Fatalf("a log against itself: %s", d.String())
		}
		if err == nil && d.Arch != arch {
			t.Fatalf("arch %q, want %s", d.Arch, arch)
		}
	})
}

// addArchSeeds adds the in-code seeds of the aarch64/riscv64 fuzz targets.
func addArchSeeds(f *testing.F) {
	f.Add([]byte(" PC=0000000040080000 X00=0000000000000000\nX30=1 SP=2\nPSTATE=400003c5 -Z-- EL1h\n"), true)
	f.Add([]byte(" pc       0000000080000000\n x0/zero  0000000000000000 x1/ra    0000000000000001\n"), false)
}

// fuzzArch maps the fuzz targets' bool to an architecture.
func fuzzArch(a64 bool) string {
	if a64 {
		return "aarch64"
	}
	return "riscv64"
}

// TestArchStateWithoutLookahead checks that a state is handed out as soon
// as its last integer line is read, not when the next dump starts: a live
// log of a CPU that halts after an instruction (wfi) writes nothing more.
func TestArchStateWithoutLookahead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ arch, file, end string }{
		{"aarch64", "aarch64-cpu.log", "PSTATE=400003c5 -Z-- EL1h\n"},
		{"riscv64", "riscv64-cpu.log", " x31/t6   0000000000000000\n"},
		{"s390x", "s390x-cpu.log", "C15=0000000000000000\n"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			i := strings.Index(string(data), tc.end)
			if i < 0 {
				t.Fatalf("%q not in %s", tc.end, tc.file)
			}
			r, w := io.Pipe()
			defer w.Close()
			go w.Write(data[:i+len(tc.end)])
			src := mustSourceReader(t, tc.arch, r)
			done := make(chan error, 1)
			var s State
			go func() { done <- src.Next(&s) }()
			select {
			case err := <-done:
				if err != nil || s.Seq != 0 || s.PC == 0 {
					t.Fatalf("first state: %+v %v", s, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the first state waits for the next dump")
			}
		})
	}
}

func mustSourceReader(t testing.TB, arch string, r io.Reader) Source {
	t.Helper()
	p, err := NewSource(arch, r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
