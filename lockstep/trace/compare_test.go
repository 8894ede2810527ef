package trace

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// formatLog renders states as QEMU 7.2 prints 64-bit dumps (the lines the
// parser needs).
func formatLog(states []State) string {
	var b strings.Builder
	for _, s := range states {
		r := s.Regs
		fmt.Fprintf(&b, "RAX=%016x RBX=%016x RCX=%016x RDX=%016x\n", r[RAX], r[RBX], r[RCX], r[RDX])
		fmt.Fprintf(&b, "RSI=%016x RDI=%016x RBP=%016x RSP=%016x\n", r[RSI], r[RDI], r[RBP], r[RSP])
		fmt.Fprintf(&b, "R8 =%016x R9 =%016x R10=%016x R11=%016x\n", r[R8], r[R9], r[R10], r[R11])
		fmt.Fprintf(&b, "R12=%016x R13=%016x R14=%016x R15=%016x\n", r[R12], r[R13], r[R14], r[R15])
		fmt.Fprintf(&b, "RIP=%016x RFL=%08x [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\n", r[RIP], r[RFL])
		fmt.Fprintf(&b, "CS =0008 0000000000000000 ffffffff 00af9a00 DPL=0 CS64 [-R-]\n")
		fmt.Fprintf(&b, "CR0=80000013 CR2=0000000000000000 CR3=%016x CR4=00000620\n", r[CR3])
		fmt.Fprintf(&b, "EFER=0000000000000500\n")
	}
	return b.String()
}

// loop returns n states of a two-instruction loop at 0x1000/0x1004 that
// counts RCX down.
func loop(n int) []State {
	out := make([]State, n)
	for i := range out {
		out[i].Regs[RIP] = 0x1000 + uint64(i%2)*4
		out[i].Regs[RCX] = uint64(100 - i/2)
		out[i].Regs[RFL] = 2
	}
	return out
}

func TestCompare(t *testing.T) {
	t.Parallel()
	mod := func(n int, f func(s []State) []State) []State { return f(loop(n)) }
	tests := []struct {
		name    string
		a, b    []State
		opt     Options
		outcome Outcome
		index   uint64
		regs    []int
		hits    [2]uint64
		prevPC  uint64
		prevHit uint64
		dups    [2]uint64
	}{
		{name: "same", a: loop(20), b: loop(20), outcome: SameUntilEOF, index: 20},
		{name: "max", a: loop(20), b: loop(20), opt: Options{Max: 7}, outcome: SameUntilMax, index: 7},
		{name: "rax differs on 3rd visit", a: loop(20), b: mod(20, func(s []State) []State { s[4].Regs[RAX] = 1; return s }),
			outcome: Differ, index: 4, regs: []int{RAX}, hits: [2]uint64{2, 2}, prevPC: 0x1004, prevHit: 1},
		{name: "pc only", a: loop(20), b: mod(20, func(s []State) []State { s[5].Regs[CS] = 9; s[5].Regs[RIP] = 0x2000; return s }),
			outcome: Differ, index: 5, regs: []int{RIP}, hits: [2]uint64{2, 0}, prevPC: 0x1000, prevHit: 2},
		{name: "unselected register", a: loop(20), b: mod(20, func(s []State) []State { s[5].Regs[CR3] = 1; return s }),
			outcome: SameUntilEOF, index: 20},
		{name: "selected cr3", a: loop(20), b: mod(20, func(s []State) []State { s[5].Regs[CR3] = 1; return s }),
			opt: Options{Registers: []int{CR3}}, outcome: Differ, index: 5, regs: []int{CR3}, hits: [2]uint64{2, 2}, prevPC: 0x1000, prevHit: 2},
		{name: "masked flag", a: loop(20), b: mod(20, func(s []State) []State { s[3].Regs[RFL] |= 1 << 16; return s }),
			opt: Options{FlagMask: 1 << 16}, outcome: SameUntilEOF, index: 20},
		{name: "unmasked flag", a: loop(20), b: mod(20, func(s []State) []State { s[3].Regs[RFL] |= 1 << 16; return s }),
			outcome: Differ, index: 3, regs: []int{RFL}, hits: [2]uint64{1, 1}, prevPC: 0x1000, prevHit: 1},
		{name: "a ends", a: loop(9), b: loop(20), outcome: EndedA, index: 9, hits: [2]uint64{0, 4}, prevPC: 0x1000, prevHit: 4},
		{name: "b ends", a: loop(20), b: loop(1), outcome: EndedB, index: 1, hits: [2]uint64{0, 0}, prevPC: 0x1000, prevHit: 0},
		{name: "duplicate collapsed", a: loop(20), b: mod(20, func(s []State) []State { return slices.Insert(s, 6, s[6], s[6]) }),
			outcome: SameUntilEOF, index: 20, dups: [2]uint64{0, 2}},
		{name: "duplicate kept", a: loop(20), b: mod(20, func(s []State) []State { return slices.Insert(s, 6, s[6]) }),
			opt: Options{KeepDuplicates: true}, outcome: Differ, index: 7, regs: []int{RIP}, hits: [2]uint64{3, 4}, prevPC: 0x1000, prevHit: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := NewParser(strings.NewReader(formatLog(tt.a)))
			b := NewParser(strings.NewReader(formatLog(tt.b)))
			d, err := Compare(context.Background(), a, b, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.outcome || d.Index != tt.index {
				t.Fatalf("got %v at %d, want %v at %d (%s)", d.Outcome, d.Index, tt.outcome, tt.index, d.String())
			}
			if d.Diverged() != (tt.outcome >= Differ) {
				t.Errorf("Diverged() = %v", d.Diverged())
			}
			if d.Dups != tt.dups {
				t.Errorf("dups %v, want %v", d.Dups, tt.dups)
			}
			if !d.Diverged() {
				return
			}
			if !slices.Equal(d.Regs, tt.regs) || d.Hits != tt.hits {
				t.Errorf("regs %v hits %v, want %v %v (%s)", d.Regs, d.Hits, tt.regs, tt.hits, d.String())
			}
			if d.Prev[0].PC != tt.prevPC || d.PrevHits[0] != tt.prevHit {
				t.Errorf("prev pc %#x hit %d, want %#x %d", d.Prev[0].PC, d.PrevHits[0], tt.prevPC, tt.prevHit)
			}
		})
	}
}

func TestCompareErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	good := formatLog(loop(4))
	if _, err := Compare(ctx, NewParser(strings.NewReader(good)), NewParser(strings.NewReader(good)), Options{}); err == nil {
		t.Error("cancelled context: no error")
	}
	if _, err := Compare(context.Background(), NewParser(strings.NewReader(good)), NewParser(strings.NewReader("junk\n")), Options{}); err == nil || !strings.Contains(err.Error(), "side b") {
		t.Errorf("bad side b: %v", err)
	}
	if _, err := Compare(context.Background(), NewParser(strings.NewReader(good)), NewParser(strings.NewReader(good)), Options{Registers: []int{NumRegs}}); err == nil {
		t.Error("bad register index: no error")
	}
}
