package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Options selects what Compare compares.
type Options struct {
	// Registers are the State.Regs indices compared (of the logs' RegSet);
	// empty means its Default (on x86 DefaultRegisters: GPRs, RIP, RFL).
	// The linear PC is always compared.
	Registers []int
	// FlagMask holds bits of the flags register (RegSet.Flags: RFL, cpsr)
	// to ignore (e.g. 1<<16 for x86's RF).
	FlagMask uint64
	// Max stops the comparison after this many states per side; 0 means
	// no limit.
	Max uint64
	// KeepDuplicates disables the collapsing of a state identical to the
	// one just before it. QEMU logs a state again when it enters a
	// one-instruction block and leaves it unexecuted to take an interrupt
	// request or an exit request; when those arrive depends on wall-clock
	// time, so by default such repeats are dropped. A real instruction
	// only repeats the whole state when it jumps to itself ("jmp .").
	KeepDuplicates bool
	// RepString, when set, reports whether the instruction at a linear PC
	// is a REP-prefixed string instruction, decoded in mode (State.Mode: 64
	// or 32); the engine decodes the guest's code. QEMU 7.2 logs one state
	// per iteration of such an instruction and 10.0 one per instruction:
	// consecutive states at its PC are
	// collapsed into the first, so that both count it as one instruction,
	// compared at its retirement. When nil, a state at the same PC whose
	// count register (cx) is one less is taken as the next iteration
	// (which also collapses a "loop ." self-loop, on both sides alike).
	RepString func(pc uint64, mode int) bool
	// PerIteration disables that collapsing: the per-iteration view, for
	// two logs of the same QEMU version.
	PerIteration bool
	// Stop, when set, is called with each state that matched on both sides
	// and its index; when it returns true the comparison ends with
	// SameUntilStop and Index = that index + 1.
	Stop func(index uint64, s *State) bool
}

// Outcome is how a comparison ended.
type Outcome int

// The outcomes of Compare.
const (
	SameUntilMax  Outcome = iota // Options.Max states matched on both sides
	SameUntilEOF                 // both logs ended after the same matching states
	SameUntilStop                // Options.Stop ended the comparison on a matching state
	Differ                       // a state differs (Divergence.Index)
	EndedA                       // side A's log ended while B went on
	EndedB                       // side B's log ended while A went on
)

var outcomeNames = [...]string{"same until max", "same until end", "same until stop", "differ", "a ended first", "b ended first"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// Divergence is what Compare found.
type Divergence struct {
	Outcome Outcome
	// Index is the 0-based index (after duplicate collapsing) of the first
	// state that differs or is missing on one side; for SameUntil* it is
	// the number of states compared.
	Index uint64
	// State holds each side's state at Index (valid for Differ; for EndedA
	// the A entry is the zero State and B's is its next state, and
	// vice versa).
	State [2]State
	// Prev holds each side's last matching state (at Index-1) when
	// Index > 0. Its instruction, at Prev[i].PC, is the one that produced
	// the difference: the log records the state before each instruction.
	Prev [2]State
	// Hits counts, per side, how often State[i].PC was reached before
	// Index. A gdbstub reaches state Index by breaking at State[i].PC and
	// continuing until the breakpoint's (Hits[i]+1)th hit.
	Hits [2]uint64
	// PrevHits counts, per side, how often Prev[i].PC was reached before
	// Index-1: break at Prev[i].PC, hit PrevHits[i]+1, to stop just
	// before the divergent instruction executes.
	PrevHits [2]uint64
	// Regs lists the compared register indices that differ (Differ only);
	// PC is listed as the RegSet's PC index (RIP on x86) when only the
	// linear PC differs.
	Regs []int
	// Arch is the architecture of the logs (RegSet.Arch), which names the
	// indices in Regs.
	Arch string
	// Dups counts, per side, the repeated states that were collapsed.
	Dups [2]uint64
	// Reps counts, per side, the REP iteration states that were collapsed.
	Reps [2]uint64
	// InRep is set when the divergent instruction (Prev) is a REP string
	// instruction, compared at its retirement; RepIters then holds each
	// side's iterations of it, from its count register (cx before minus
	// after, in the instruction's width), the per-iteration view.
	InRep    bool
	RepIters [2]uint64
}

// Diverged reports whether the logs differ or one ended before the other.
func (d *Divergence) Diverged() bool { return d.Outcome >= Differ }

// String summarises d in one line, e.g. "differ at 1234 (pc 0x1000a): rcx 0x1 vs 0x2".
func (d *Divergence) String() string {
	switch d.Outcome {
	case Differ:
		var b strings.Builder
		rs := ArchRegs(d.Arch)
		if rs == nil {
			rs = x86Regs
		}
		fmt.Fprintf(&b, "differ at %d (pc %#x vs %#x)", d.Index, d.State[0].PC, d.State[1].PC)
		for i, r := range d.Regs {
			sep := ", "
			if i == 0 {
				sep = ": "
			}
			fmt.Fprintf(&b, "%s%s %#x vs %#x", sep, rs.Name(r), d.State[0].Regs[r], d.State[1].Regs[r])
		}
		if d.InRep {
			fmt.Fprintf(&b, " (inside a REP string instruction: %d vs %d iterations)", d.RepIters[0], d.RepIters[1])
		}
		return b.String()
	case EndedA, EndedB:
		return fmt.Sprintf("%v after %d states", d.Outcome, d.Index)
	}
	return fmt.Sprintf("%v: %d states", d.Outcome, d.Index)
}

// Compare reads a and b in lockstep and returns the first state where the
// selected registers (or the linear PC) differ, or where only one log
// ends. The context is checked every 4096 states; readers that can block
// (pipes) must also be closed when ctx ends, which OpenFIFO's readers are.
// On Differ/EndedA/EndedB the parsers stop at the divergence and can be
// read further.
func Compare(ctx context.Context, a, b Source, opt Options) (Divergence, error) {
	return CompareFrom(ctx, NewWalker(a), NewWalker(b), opt)
}

// CompareFrom is Compare on two Walkers. A Walker positioned by Seek
// contributes its current state as the first compared state (index 0);
// a fresh one starts with its log's first state. Hits count from index 0.
// Options.KeepDuplicates applies from the first state read here on.
func CompareFrom(ctx context.Context, sa, sb *Walker, opt Options) (Divergence, error) {
	rs := sa.rs
	if sb.rs != rs {
		return Divergence{}, fmt.Errorf("trace: compare: a %s log against a %s log", rs.arch, sb.rs.arch)
	}
	regs := opt.Registers
	if len(regs) == 0 {
		regs = rs.Default()
	}
	for _, r := range regs {
		if r < 0 || r >= rs.Num() {
			return Divergence{}, fmt.Errorf("trace: compare: %s register index %d out of range", rs.arch, r)
		}
	}
	flagReg := rs.Flags()
	sa.keep, sb.keep = opt.KeepDuplicates, opt.KeepDuplicates
	sa.rep, sb.rep = opt.RepString, opt.RepString
	sa.perIter, sb.perIter = opt.PerIteration, opt.PerIteration
	flagKeep := ^opt.FlagMask
	// Before a divergence both sides ran the same PCs when the PC is
	// compared, which it always is, so one table serves both sides.
	hits := make(map[uint64]uint64, 1024)
	d := Divergence{Arch: rs.arch}
	var n uint64
	for ; opt.Max == 0 || n < opt.Max; n++ {
		if n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return d, fmt.Errorf("trace: compare: %w", err)
			}
		}
		ea := sa.next()
		eb := sb.next()
		if ea != nil && !errors.Is(ea, io.EOF) {
			return d, fmt.Errorf("trace: side a: %w", ea)
		}
		if eb != nil && !errors.Is(eb, io.EOF) {
			return d, fmt.Errorf("trace: side b: %w", eb)
		}
		d.Dups = [2]uint64{sa.dups, sb.dups}
		d.Reps = [2]uint64{sa.repTotal, sb.repTotal}
		switch {
		case ea != nil && eb != nil:
			d.Outcome, d.Index = SameUntilEOF, n
			return d, nil
		case ea != nil:
			d.Outcome = EndedA
			d.State[1] = sb.cur
			finish(&d, n, sa, sb, hits)
			return d, nil
		case eb != nil:
			d.Outcome = EndedB
			d.State[0] = sa.cur
			finish(&d, n, sa, sb, hits)
			return d, nil
		}
		x, y := &sa.cur, &sb.cur
		same := x.PC == y.PC
		for _, r := range regs {
			va, vb := x.Regs[r], y.Regs[r]
			if r == flagReg {
				va, vb = va&flagKeep, vb&flagKeep
			}
			if va != vb {
				same = false
				break
			}
		}
		if !same {
			d.Outcome = Differ
			d.State = [2]State{*x, *y}
			for _, r := range regs {
				va, vb := x.Regs[r], y.Regs[r]
				if r == flagReg {
					va, vb = va&flagKeep, vb&flagKeep
				}
				if va != vb {
					d.Regs = append(d.Regs, r)
				}
			}
			if len(d.Regs) == 0 {
				d.Regs = []int{rs.PC()}
			}
			finish(&d, n, sa, sb, hits)
			return d, nil
		}
		hits[x.PC]++
		sa.prev, sa.have = sa.cur, true
		sb.prev, sb.have = sb.cur, true
		if opt.Stop != nil && opt.Stop(n, x) {
			d.Outcome, d.Index = SameUntilStop, n+1
			return d, nil
		}
	}
	d.Outcome, d.Index = SameUntilMax, n
	return d, nil
}

func finish(d *Divergence, n uint64, sa, sb *Walker, hits map[uint64]uint64) {
	d.Index = n
	if d.Outcome != EndedA {
		d.Hits[0] = hits[d.State[0].PC]
	}
	if d.Outcome != EndedB {
		d.Hits[1] = hits[d.State[1].PC]
	}
	if n > 0 {
		d.Prev = [2]State{sa.prev, sb.prev}
		if d.Outcome == Differ && sa.x86 {
			d.InRep, d.RepIters = repView(sa, sb, &d.Prev, &d.State)
		}
		// hits includes the Prev instruction itself; exclude it.
		d.PrevHits = [2]uint64{hits[sa.prev.PC] - 1, hits[sb.prev.PC] - 1}
	}
}
