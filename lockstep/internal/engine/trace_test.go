package engine

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/trace"
	"github.com/lockstep-dev/lockstep/scenario"
)

var x86Flags = map[string][]compare.FlagBit{
	"eflags": {{Name: "CF", Shift: 0, Width: 1}, {Name: "RF", Shift: 16, Width: 1}, {Name: "IOPL", Shift: 12, Width: 2}},
}

var a64Flags = map[string][]compare.FlagBit{
	"cpsr": {{Name: "V", Shift: 28, Width: 1}, {Name: "N", Shift: 31, Width: 1}},
}

var s390Flags = map[string][]compare.FlagBit{
	"pswm": {{Name: "CC", Shift: 44, Width: 2}, {Name: "PM", Shift: 40, Width: 4}},
}

// flagsOf returns the test's flag fields of arch.
func flagsOf(arch string) map[string][]compare.FlagBit {
	switch arch {
	case "aarch64":
		return a64Flags
	case "s390x":
		return s390Flags
	}
	return x86Flags
}

// archReg returns the index of name in arch's trace register set.
func archReg(t *testing.T, arch, name string) int {
	t.Helper()
	i := trace.ArchRegs(arch).Index(name)
	if i < 0 {
		t.Fatalf("%s has no register %q", arch, name)
	}
	return i
}

func TestTraceIgnore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		arch  string // "" is x86_64
		rules []string
		whole []int
		mask  uint64
	}{
		{name: "none"},
		{name: "aarch64 flag bits", arch: "aarch64", rules: []string{"cpsr.n", "CPSR.V"}, mask: 1<<31 | 1<<28},
		{name: "aarch64 whole registers", arch: "aarch64", rules: []string{"x3", "sp", "pstate"},
			whole: []int{archReg(t, "aarch64", "x3"), archReg(t, "aarch64", "sp"), archReg(t, "aarch64", "cpsr")}},
		{name: "aarch64 x86 rule", arch: "aarch64", rules: []string{"eflags.RF", "rax"}},
		{name: "riscv64 aliases", arch: "riscv64", rules: []string{"s0", "x1", "mstatus.MIE"},
			whole: []int{archReg(t, "riscv64", "fp"), archReg(t, "riscv64", "ra"), archReg(t, "riscv64", "mstatus")}},
		{name: "s390x condition code", arch: "s390x", rules: []string{"pswm.cc", "pswa"},
			mask: 3 << 44, whole: []int{archReg(t, "s390x", "pc")}},
		{name: "s390x control register", arch: "s390x", rules: []string{"cr0", "r2"},
			whole: []int{archReg(t, "s390x", "cr0"), archReg(t, "s390x", "r2")}},
		{name: "rf bit", rules: []string{"eflags.RF"}, mask: 1 << 16},
		{name: "two-bit field, case", rules: []string{" EFLAGS.iopl ", "eflags.rf"}, mask: 3<<12 | 1<<16},
		{name: "whole registers", rules: []string{"rax", "fs_base", "eflags"}, whole: []int{trace.RAX, trace.FSBase, trace.RFL}},
		{name: "unknown bit ignores the register", rules: []string{"eflags.XX"}, whole: []int{trace.RFL}},
		{name: "bit of a non-flags register", rules: []string{"cr0.PG"}, whole: []int{trace.CR0}},
		{name: "not in the log", rules: []string{"xmm0", "k_gs_base"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			arch := tt.arch
			if arch == "" {
				arch = "x86_64"
			}
			flags := flagsOf(arch)
			rs := trace.ArchRegs(arch)
			whole, mask := TraceIgnore(rs, tt.rules, flags)
			if mask != tt.mask {
				t.Errorf("mask %#x, want %#x", mask, tt.mask)
			}
			if len(whole) != len(tt.whole) {
				t.Errorf("whole %v, want %v", whole, tt.whole)
			}
			for _, i := range tt.whole {
				if !whole[i] {
					t.Errorf("register %s not ignored", rs.Name(i))
				}
			}
		})
	}
}

// FuzzTraceIgnore checks that any rule list maps to valid register
// indices and flag bits that only cover named flags.
func FuzzTraceIgnore(f *testing.F) {
	for _, s := range []string{"cpsr.N,x0", "s0,mstatus", "eflags.RF", "rax,eflags.IOPL", "EFLAGS.cf, cr0.PG", "pswm.CC,pswa", "xmm0", ".", "eflags.", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		for _, arch := range []string{"x86_64", "aarch64", "riscv64", "s390x"} {
			rs := trace.ArchRegs(arch)
			flags := flagsOf(arch)
			var named uint64
			for _, bits := range flags {
				for _, b := range bits {
					named |= (1<<b.Width - 1) << b.Shift
				}
			}
			whole, mask := TraceIgnore(rs, strings.Split(list, ","), flags)
			for i := range whole {
				if i < 0 || i >= rs.Num() {
					t.Fatalf("%s: index %d out of range", arch, i)
				}
			}
			if mask&^named != 0 || (arch == "riscv64" && mask != 0) {
				t.Fatalf("%s: mask %#x has unnamed bits", arch, mask)
			}
		}
	})
}

// TestTraceableArch checks which pairs the trace engine takes by
// architecture: one binary under TCG on x86_64, aarch64, riscv64 or s390x,
// not i386 (no -d cpu parser of its own), KVM or two architectures.
func TestTraceableArch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b  string
		accel string
		want  bool
	}{
		{"x86_64", "x86_64", scenario.AccelTCG, true},
		{"aarch64", "aarch64", scenario.AccelTCG, true},
		{"riscv64", "riscv64", scenario.AccelTCG, true},
		{"s390x", "s390x", scenario.AccelTCG, true},
		{"s390x", "aarch64", scenario.AccelTCG, false},
		{"i386", "i386", scenario.AccelTCG, false},
		{"aarch64", "riscv64", scenario.AccelTCG, false},
		{"x86_64", "x86_64", scenario.AccelKVM, false},
	}
	for _, tt := range tests {
		e := New(Config{Scenario: &scenario.Scenario{}, Same: true, Trace: true, Launcher: &fake.Launcher{}})
		p := guest.Pair{
			{Spec: scenario.Guest{Arch: tt.a, Accel: tt.accel}},
			{Spec: scenario.Guest{Arch: tt.b, Accel: tt.accel}},
		}
		if got := e.Traceable(p); got != tt.want {
			t.Errorf("%s/%s %s: Traceable %v, want %v", tt.a, tt.b, tt.accel, got, tt.want)
		}
	}
}
