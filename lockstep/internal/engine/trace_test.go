package engine

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/trace"
)

var x86Flags = map[string][]compare.FlagBit{
	"eflags": {{Name: "CF", Shift: 0, Width: 1}, {Name: "RF", Shift: 16, Width: 1}, {Name: "IOPL", Shift: 12, Width: 2}},
}

func TestTraceIgnore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rules []string
		whole []int
		mask  uint64
	}{
		{name: "none"},
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
			whole, mask := TraceIgnore(tt.rules, x86Flags)
			if mask != tt.mask {
				t.Errorf("mask %#x, want %#x", mask, tt.mask)
			}
			if len(whole) != len(tt.whole) {
				t.Errorf("whole %v, want %v", whole, tt.whole)
			}
			for _, i := range tt.whole {
				if !whole[i] {
					t.Errorf("register %s not ignored", trace.RegName(i))
				}
			}
		})
	}
}

// FuzzTraceIgnore checks that any rule list maps to valid register
// indices and flag bits that only cover named flags.
func FuzzTraceIgnore(f *testing.F) {
	for _, s := range []string{"eflags.RF", "rax,eflags.IOPL", "EFLAGS.cf, cr0.PG", "xmm0", ".", "eflags.", ""} {
		f.Add(s)
	}
	var named uint64
	for _, b := range x86Flags["eflags"] {
		named |= (1<<b.Width - 1) << b.Shift
	}
	f.Fuzz(func(t *testing.T, list string) {
		whole, mask := TraceIgnore(strings.Split(list, ","), x86Flags)
		for i := range whole {
			if i < 0 || i >= trace.NumRegs {
				t.Fatalf("index %d out of range", i)
			}
		}
		if mask&^named != 0 {
			t.Fatalf("mask %#x has unnamed bits", mask)
		}
	})
}
