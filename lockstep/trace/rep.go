package trace

// REP string instructions across QEMU versions. QEMU 7.2 logs a state
// before every iteration of a REP-prefixed string instruction (rep stosq,
// rep movsb, repe cmpsb, ...): the same PC with the count register one
// less each time. QEMU 10.0 logs one state per instruction. The Walker
// collapses the iteration states into the instruction's first state, so
// both logs hold one state per retired instruction and align; the
// iterations collapsed are counted (Walker.repIters, Divergence.Reps),
// and a divergence whose instruction is a REP says how many iterations
// each side ran (Divergence.RepIters).

// repIteration reports whether w.cur, just read, is a further iteration
// of the REP string instruction whose first state is the one handed out
// last (w.prev): same PC and mode, and either the RepString
// predicate says the PC holds one, or (no predicate) the count register
// is one less than in the previous iteration state.
func (w *Walker) repIteration() bool {
	last := &w.prev
	if w.inRep {
		last = &w.repLast
	}
	if w.cur.PC != last.PC || w.cur.Mode != last.Mode {
		return false
	}
	if w.rep != nil {
		return w.rep(w.cur.PC, w.cur.Mode)
	}
	return (last.Regs[RCX]-w.cur.Regs[RCX])&0xffff == 1
}

// repView is the per-iteration view of a divergence: whether the
// divergent instruction (prev) is a REP string instruction on either side,
// and each side's iterations, from the count register.
func repView(sa, sb *Walker, prev, state *[2]State) (bool, [2]uint64) {
	var iters [2]uint64
	in := false
	for i, w := range []*Walker{sa, sb} {
		p, s := &prev[i], &state[i]
		// Iterations collapsed while reading the divergent state were
		// iterations of prev.
		isRep := w.repIters > 0 || (w.rep != nil && w.rep(p.PC, p.Mode))
		if !isRep {
			continue
		}
		in = true
		mask := uint64(1<<64 - 1)
		if p.Mode != 64 {
			mask = 1<<32 - 1
		}
		iters[i] = (p.Regs[RCX] - s.Regs[RCX]) & mask
	}
	return in, iters
}
