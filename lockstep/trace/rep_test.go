package trace

import (
	"context"
	"strings"
	"testing"
)

const (
	repPC   = 0x1005 // rep stosq
	afterPC = 0x1008
)

// repLog is a guest that sets rcx=n, runs `rep stosq` at repPC and then
// two more instructions, logged as QEMU 7.2 does (one state per
// iteration, perIter) or as 10.0 does (one state for the instruction).
// rax after the REP is rax; dup repeats one iteration state (an exit
// request) when >= 0.
func repLog(perIter bool, n, dup int, rax uint64) []State {
	var out []State
	st := func(rip, rcx, rdi, rax uint64) State {
		var s State
		s.Regs[RIP], s.Regs[RCX], s.Regs[RDI], s.Regs[RAX], s.Regs[RFL] = rip, rcx, rdi, rax, 2
		return s
	}
	out = append(out, st(0x1000, 0, 0x8000, 0))
	iters := 1
	if perIter {
		iters = max(n, 1)
	}
	for i := range iters {
		out = append(out, st(repPC, uint64(n-i), 0x8000+8*uint64(i), 0))
		if i == dup {
			out = append(out, out[len(out)-1])
		}
	}
	out = append(out, st(afterPC, 0, 0x8000+8*uint64(n), 0))
	out = append(out, st(afterPC+4, 0, 0x8000+8*uint64(n), rax))
	out = append(out, st(afterPC+8, 0, 0x8000+8*uint64(n), rax))
	for i := range out {
		out[i].PC = out[i].Regs[RIP]
	}
	return out
}

func compareLogs(t *testing.T, a, b []State, opt Options) Divergence {
	t.Helper()
	d, err := Compare(context.Background(), NewParser(strings.NewReader(formatLog(a))), NewParser(strings.NewReader(formatLog(b))), opt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func isRep(pc uint64, mode int) bool { return pc == repPC && mode == 64 }

// TestCompareRepAcrossVersions: QEMU 7.2's per-iteration log and 10.0's
// per-instruction log of the same guest align, with the predicate and
// with the count-register heuristic, and a later divergence is found at
// its real place.
func TestCompareRepAcrossVersions(t *testing.T) {
	t.Parallel()
	for _, pred := range []func(uint64, int) bool{nil, isRep} {
		name := "heuristic"
		if pred != nil {
			name = "predicate"
		}
		t.Run(name, func(t *testing.T) {
			v72, v10 := repLog(true, 6, 2, 7), repLog(false, 6, -1, 7)
			d := compareLogs(t, v72, v10, Options{RepString: pred})
			if d.Outcome != SameUntilEOF || d.Index != 5 {
				t.Fatalf("got %v, want same until end after 5 instructions", d.String())
			}
			if d.Reps != [2]uint64{5, 0} || d.Dups != [2]uint64{1, 0} {
				t.Errorf("reps %v dups %v, want [5 0] [1 0]", d.Reps, d.Dups)
			}

			// The guests differ after the REP: rax at afterPC+4.
			d = compareLogs(t, repLog(true, 6, -1, 7), repLog(false, 6, -1, 9), Options{RepString: pred})
			if d.Outcome != Differ || d.Index != 3 || d.Prev[0].PC != afterPC || d.InRep {
				t.Fatalf("got %v (prev %#x, in rep %v), want differ at 3 after %#x", d.String(), d.Prev[0].PC, d.InRep, afterPC)
			}
			if d.Hits != [2]uint64{0, 0} || d.PrevHits != [2]uint64{0, 0} {
				t.Errorf("hits %v prevhits %v", d.Hits, d.PrevHits)
			}
		})
	}
}

// TestCompareRepPerIteration: PerIteration keeps 7.2's iteration states,
// so two 7.2 logs compare iteration by iteration, and a 7.2 log against
// a 10.0 log differs right after the REP's first state.
func TestCompareRepPerIteration(t *testing.T) {
	t.Parallel()
	d := compareLogs(t, repLog(true, 6, -1, 7), repLog(true, 6, -1, 7), Options{PerIteration: true})
	if d.Outcome != SameUntilEOF || d.Index != 10 {
		t.Fatalf("got %v, want same until end after 10 states", d.String())
	}
	d = compareLogs(t, repLog(true, 6, -1, 7), repLog(false, 6, -1, 7), Options{PerIteration: true, RepString: isRep})
	if d.Outcome != Differ || d.Index != 2 {
		t.Fatalf("got %v, want differ at 2", d.String())
	}
}

// TestCompareInsideRep: a REP that runs a different number of iterations
// on each side (repe cmps on different data) is the divergent
// instruction, with each side's iteration count.
func TestCompareInsideRep(t *testing.T) {
	t.Parallel()
	// Side b's REP stops after 4 of 6 iterations: rcx 2 is left.
	b := repLog(false, 6, -1, 7)
	for i := range b {
		if b[i].PC >= afterPC {
			b[i].Regs[RCX], b[i].Regs[RDI] = 2, 0x8000+8*4
		}
	}
	for _, a := range [][]State{repLog(true, 6, -1, 7), repLog(false, 6, -1, 7)} {
		d := compareLogs(t, a, b, Options{RepString: isRep})
		if d.Outcome != Differ || d.Index != 2 || d.Prev[0].PC != repPC {
			t.Fatalf("got %v (prev %#x), want differ at 2 after the REP", d.String(), d.Prev[0].PC)
		}
		if !d.InRep || d.RepIters != [2]uint64{6, 4} {
			t.Fatalf("in rep %v iterations %v, want 6 and 4", d.InRep, d.RepIters)
		}
		if !strings.Contains(d.String(), "inside a REP string instruction: 6 vs 4 iterations") {
			t.Errorf("summary %q", d.String())
		}
	}
}

// TestWalkerRepNotCollapsed: the same PC without the count going down by
// one (an instruction jumping to itself) is not a REP iteration for the
// heuristic; the predicate decides when set.
func TestWalkerRepNotCollapsed(t *testing.T) {
	t.Parallel()
	s := repLog(true, 3, -1, 0)
	for i := range s {
		if s[i].PC == repPC {
			s[i].Regs[RCX] = 5 + uint64(i) // counts up: not an iteration
		}
	}
	d := compareLogs(t, s, s, Options{})
	if d.Index != uint64(len(s)) || d.Reps != [2]uint64{0, 0} {
		t.Errorf("got %v, reps %v; want all %d states, none collapsed", d.String(), d.Reps, len(s))
	}
	d = compareLogs(t, s, s, Options{RepString: isRep})
	if d.Index != uint64(len(s))-2 || d.Reps != [2]uint64{2, 2} {
		t.Errorf("with the predicate: got %v, reps %v", d.String(), d.Reps)
	}
}
