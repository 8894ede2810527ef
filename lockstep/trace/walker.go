package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Walker reads one log state by state with Compare's collapsing of
// repeated states. Seek positions it, for example at the sync point a
// comparison starts from; CompareFrom then starts there.
type Walker struct {
	p    Source
	rs   *RegSet
	x86  bool  // REP string handling applies
	prev State // the last state handed out before cur
	cur  State
	have bool // prev is valid
	// pending means cur was found by Seek and not yet consumed: the next
	// read returns it.
	pending bool
	dups    uint64
	keep    bool
	read    uint64 // distinct states read
	// REP string instructions: see rep.go.
	rep      func(pc uint64, mode int) bool
	perIter  bool
	inRep    bool   // next has collapsed iterations of prev's REP instruction
	repLast  State  // the last iteration state collapsed
	repIters uint64 // iteration states collapsed by the last next
	repTotal uint64 // iteration states collapsed so far
}

// NewWalker returns a Walker reading p (a *Parser, or a Source from
// NewSource) from its current position.
func NewWalker(p Source) *Walker {
	rs := p.Regs()
	return &Walker{p: p, rs: rs, x86: rs == x86Regs}
}

// Regs returns the register set of the log.
func (w *Walker) Regs() *RegSet { return w.rs }

// Dups returns how many repeated states were collapsed so far.
func (w *Walker) Dups() uint64 { return w.dups }

// Read returns how many distinct states were read so far.
func (w *Walker) Read() uint64 { return w.read }

// State returns the current state (the one Seek found, or the last one
// compared).
func (w *Walker) State() State { return w.cur }

// next reads the next distinct state into w.cur. Repeated states are
// collapsed (unless keep), and so are the per-iteration states of a REP
// string instruction (unless perIter): see repIteration.
func (w *Walker) next() error {
	if w.pending {
		w.pending = false
		return nil
	}
	w.inRep, w.repIters = false, 0
	for {
		if err := w.p.Next(&w.cur); err != nil {
			return err
		}
		if !w.keep && w.have && (w.rs.repeated(&w.prev, &w.cur) || (w.inRep && w.rs.repeated(&w.repLast, &w.cur))) {
			w.dups++
			continue
		}
		if w.x86 && !w.perIter && w.have && w.repIteration() {
			w.repLast, w.inRep = w.cur, true
			w.repIters++
			w.repTotal++
			continue
		}
		w.read++
		return nil
	}
}

// ErrNotReached is returned by Seek when the log ends before the
// requested arrival.
var ErrNotReached = errors.New("log ended before the arrival")

// Seek reads on, strictly after the current state, until the hit-th
// (1-based) state whose linear PC is pc, and leaves the Walker there: a
// following Seek starts after it, a following CompareFrom compares it
// first. This mirrors a gdbstub that continues from a breakpoint (stepping
// off it) until the hit-th stop at pc. It returns the number of states
// read; the context is checked every 4096 states.
func (w *Walker) Seek(ctx context.Context, pc uint64, hit int) (uint64, error) {
	if hit < 1 {
		hit = 1
	}
	if w.pending {
		// Seeking from a found state: step off it first.
		w.pending = false
	}
	var n uint64
	count := 0
	for {
		if n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return n, fmt.Errorf("trace: seek %#x: %w", pc, err)
			}
		}
		if w.read > 0 || w.have {
			w.prev, w.have = w.cur, true
		}
		if err := w.next(); err != nil {
			if errors.Is(err, io.EOF) {
				return n, fmt.Errorf("trace: seek %#x hit %d (found %d after %d states): %w", pc, hit, count, n, ErrNotReached)
			}
			return n, fmt.Errorf("trace: seek %#x: %w", pc, err)
		}
		n++
		if w.cur.PC == pc {
			count++
			if count >= hit {
				w.pending = true
				return n, nil
			}
		}
	}
}
