package engine

import (
	"context"
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
)

// maxRepSteps bounds the single steps one REP string instruction may take
// (one per iteration under QEMU 7.2 and 10.0 alike).
const maxRepSteps = 1 << 20

// Instruction granularity across QEMU versions. A REP-prefixed string
// instruction (rep stosq, rep movsb, repe cmpsb, ...) is one instruction
// for the comparison, whatever the QEMU version does per iteration: a
// single step runs one iteration, and on the step that takes the count
// to 0 QEMU 7.2 leaves rip after the instruction while 10.0 leaves it on
// the instruction (with eflags.RF set) and needs one more step. So a step
// that leaves the PC on the REP instruction it started on is not a new
// instruction: the side is stepped on until the PC leaves it, and the
// registers are compared at the instruction's retirement, where both
// versions agree (RF is clear again once the instruction completes).

// retire steps g on while it stays on the REP string instruction at from,
// after a step that left its PC at now. It returns the number of extra
// single steps taken (0 when the step already retired an instruction, or
// the instruction is no REP string instruction) and whether the guest
// exited meanwhile.
func (e *Engine) retire(ctx context.Context, g *guest.Guest, from, now uint64) (int, bool, error) {
	if now != from || !g.RepString(ctx, from) {
		return 0, false, nil
	}
	for extra := 1; extra <= maxRepSteps; extra++ {
		reply, err := g.Step(ctx)
		if err != nil {
			return extra, false, fmt.Errorf("step the REP string instruction at %s on: %w", g.Loc(from), err)
		}
		if reply.Exited() {
			return extra, true, nil
		}
		pc, err := g.PC(ctx)
		if err != nil {
			return extra, false, err
		}
		if pc != from {
			return extra, false, nil
		}
	}
	return maxRepSteps, false, fmt.Errorf("guest %s: the REP string instruction at %s did not retire within %d single steps", g.Name(), g.Loc(from), maxRepSteps)
}

// repPredicate is trace.Options.RepString for the trace engine: it
// decodes g's code (the symbol file, else guest memory) in the mode of
// the logged state, once per PC and mode.
func repPredicate(ctx context.Context, g *guest.Guest) func(pc uint64, mode int) bool {
	type key struct {
		pc   uint64
		mode int
	}
	seen := map[key]bool{}
	return func(pc uint64, mode int) bool {
		k := key{pc, mode}
		if v, ok := seen[k]; ok {
			return v
		}
		v := g.RepStringMode(ctx, pc, mode)
		seen[k] = v
		return v
	}
}

// retireRegs completes the step from before to regs at retirement (see
// retire) and returns the registers there.
func (e *Engine) retireRegs(ctx context.Context, g *guest.Guest, names []string, before, regs compare.Regs) (compare.Regs, bool, error) {
	pcName := g.Arch.PC
	from, now := beUint(before.Values[pcName]), beUint(regs.Values[pcName])
	extra, exited, err := e.retire(ctx, g, from, now)
	if err != nil || exited || extra == 0 {
		if exited {
			return compare.Regs{}, true, err
		}
		return regs, false, err
	}
	vals, err := g.Registers(ctx, names...)
	if err != nil {
		return compare.Regs{}, false, fmt.Errorf("after the REP string instruction at %s: %w", g.Loc(from), err)
	}
	return ToRegs(names, vals), false, nil
}

// StepInsn single-steps g by one retired instruction: a REP string
// instruction is stepped through to its end (see retire). from is g's PC
// (0: read it first); it returns the PC after the instruction.
func (e *Engine) StepInsn(ctx context.Context, g *guest.Guest, from uint64) (pc uint64, exited bool, err error) {
	if from == 0 {
		if from, err = g.PC(ctx); err != nil {
			return 0, false, err
		}
	}
	reply, err := g.Step(ctx)
	if err != nil || reply.Exited() {
		return 0, err == nil, err
	}
	if pc, err = g.PC(ctx); err != nil {
		return 0, false, err
	}
	extra, exited, err := e.retire(ctx, g, from, pc)
	if err != nil || exited || extra == 0 {
		return pc, exited, err
	}
	pc, err = g.PC(ctx)
	return pc, false, err
}

// repIterations is the per-iteration view of a step that diverged on a
// REP string instruction: for each side whose instruction at prev[i] is
// one, how many iterations it ran, from the count register before and
// after (-1 when unknown or not a REP string instruction). ok is false
// when neither side's instruction is one.
func repIterations(ctx context.Context, p guest.Pair, prev [2]uint64, before, after [2]compare.Regs) (iters [2]int64, ok bool) {
	for i, g := range p {
		iters[i] = -1
		if !g.RepString(ctx, prev[i]) {
			continue
		}
		ok = true
		for _, c := range []string{"rcx", "ecx"} {
			b, hb := before[i].Values[c]
			a, ha := after[i].Values[c]
			if hb && ha {
				iters[i] = int64(beUint(b) - beUint(a))
				break
			}
		}
	}
	return iters, ok
}

// repSummary says that the divergent instruction is a REP string
// instruction compared at its retirement, with each side's iterations.
func repSummary(iters [2]int64) string {
	side := func(n int64) string {
		if n < 0 {
			return "?"
		}
		return fmt.Sprint(n)
	}
	s := fmt.Sprintf("; inside a REP string instruction (compared at its retirement): %s iterations on a, %s on b", side(iters[0]), side(iters[1]))
	if iters[0] >= 0 && iters[1] >= 0 && iters[0] != iters[1] {
		side := "a"
		if iters[1] < iters[0] {
			side = "b"
		}
		s += fmt.Sprintf(" (%s stopped at iteration %d)", side, min(iters[0], iters[1]))
	}
	return s
}
