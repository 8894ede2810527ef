package localize

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// write is one store to a watched word, seen through a write watchpoint.
type write struct {
	value uint64
	// after is the PC after the storing instruction (x86 data watchpoints
	// trap after the store).
	after compare.Location
	// at is the storing instruction when the watchpoint stopped before it
	// (Arch.WatchBefore); 0 when only after is known.
	at uint64
	// mode is the guest's decoding mode there (guest.Mode).
	mode int
}

// watched is what watching one side's stores found.
type watched struct {
	writes []write
	// complete is true when the side got to the sync point with every
	// store recorded; otherwise why says what stopped the watch.
	complete bool
	why      string
}

// writes finds the store that made memory md differ at sync point k, at
// the word at offset word of the range. It rewinds to sync point k-1, puts a write
// watchpoint on that word on each side (each through its own symbols, so
// it works between builds), records the stores up to sync point k (at most
// localize.max_writes per side), and reports the first store whose value,
// or whose writer, differs: "write #1 to results+0x28 in kmain: 0x…11 vs
// 0x…12", with the call path there from a second replay. When a side
// stores more than the budget and the stores seen match, it says so and
// concludes nothing.
func (l *Localizer) writes(ctx context.Context, k int, md *compare.MemoryDiff, word uint64) ([]compare.Divergence, error) {
	e := l.E
	p, err := l.RW.At(ctx, k-1)
	if err != nil {
		return nil, err
	}
	ps := uint64(p[0].Arch.PtrSize)
	var addrs [2]uint64
	for i := range addrs {
		addrs[i] = md.Addr[i] + word
	}
	target := fmt.Sprintf("%s+%#x", md.Name, word)
	t0 := time.Now()
	sp := &e.Scenario().Sync[k]
	budget := e.Scenario().Localize.MaxWrites
	bound := e.WaitBound(ctx, sp)
	var ws [2]watched
	err = p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		var err error
		ws[i], err = l.watch(ctx, g, addrs[i], int(ps), sp, bound, budget)
		return err
	})
	if err != nil {
		if errors.Is(err, rsp.ErrUnsupported) || errors.Is(err, rsp.ErrRefused) {
			e.Notef("localisation: no write watchpoint on %s (%v)", target, err)
			return nil, nil
		}
		return nil, err
	}
	e.Logf("write localisation of %s took %s: %d and %d writes", target, time.Since(t0).Round(time.Millisecond), len(ws[0].writes), len(ws[1].writes))
	idx, why := l.firstWriteDivergence(p, ws)
	if idx < 0 {
		e.Notef("%s", l.noWriteDivergence(p, k, target, addrs, ws))
		return nil, nil
	}
	// Describe the stores before rewinding again: the rewind may replace
	// the guests of p.
	id := &compare.InstructionDiff{Granularity: compare.ByWrite}
	var pcs [2]compare.Location
	for i, g := range p {
		if idx >= len(ws[i].writes) {
			id.Disasm[i] = "(no such write)"
			continue
		}
		w := ws[i].writes[idx]
		pcs[i] = w.after
		id.Disasm[i] = fmt.Sprintf("store %#x to %s (before %s)", w.value, g.Loc(addrs[i]), w.after)
		if w.at != 0 {
			text, code := g.Disasm(ctx, w.at)
			pcs[i] = g.Loc(w.at)
			id.Disasm[i] = fmt.Sprintf("%s  (stores %#x to %s)", text, w.value, g.Loc(addrs[i]))
			id.Bytes[i] = hex.EncodeToString(code)
		} else if at, text, code, ok := g.InsnBefore(w.after.Addr, w.mode); ok {
			pcs[i] = g.Loc(at)
			id.Disasm[i] = fmt.Sprintf("%s  (stores %#x to %s)", text, w.value, g.Loc(addrs[i]))
			id.Bytes[i] = hex.EncodeToString(code)
		}
	}
	stacks, err := l.stacksAtWrite(ctx, k, idx, addrs, int(ps))
	switch {
	case errors.Is(err, ErrNotReplayed) || err != nil && !errors.Is(err, guest.ErrInfrastructure) && ctx.Err() == nil:
		e.Notef("localisation: no call path at the differing store: %v", err)
	case err != nil:
		return nil, err
	}
	for i, st := range stacks {
		// The path is taken where the watchpoint stopped: after the
		// store on x86_64 and s390x. Its innermost frame is the store's.
		if n := len(st); n > 0 && pcs[i].Addr != 0 && st[n-1].Symbol == pcs[i].Symbol {
			st[n-1].Location = pcs[i]
		}
	}
	id.CallPath = stacks
	d := e.At(k, compare.Divergence{Kind: compare.KindInstruction, PC: pcs, Instruction: id,
		Summary: fmt.Sprintf("write #%d to %s %s (localised by write watchpoint %s)", idx+1, target, why, engine.Between(k))})
	return []compare.Divergence{d}, nil
}

// noWriteDivergence says why no store was found to blame, claiming only
// what was seen: every store matched and both sides' stores were all seen;
// nothing stored; or the watch did not see everything.
func (l *Localizer) noWriteDivergence(p guest.Pair, k int, target string, addrs [2]uint64, ws [2]watched) string {
	between := engine.Between(k)
	for i, w := range ws {
		if !w.complete {
			return fmt.Sprintf("localisation: not localised: %s on side %s; the first %s to %s %s match",
				w.why, p[i].Name(), compare.Plural(min(len(ws[0].writes), len(ws[1].writes)), "write", "writes"), target, between)
		}
	}
	if len(ws[0].writes) == 0 {
		var from []string
		for i, g := range p {
			if g.Syms == nil {
				continue
			}
			if sec, off, ok := g.Syms.FileOffset(addrs[i]); ok {
				from = append(from, fmt.Sprintf("%s: %s at file offset %#x of %s", g.Name(), sec, off, filepath.Base(g.Syms.Path())))
			}
		}
		if len(from) > 0 && k == 0 {
			return fmt.Sprintf("localisation: nothing stores to %s %s: its bytes come from the image (%s)", target, between, strings.Join(from, "; "))
		}
		if len(from) > 0 {
			return fmt.Sprintf("localisation: nothing stores to %s %s: it differed before (written earlier, or built into the image: %s)", target, between, strings.Join(from, "; "))
		}
		return fmt.Sprintf("localisation: nothing stores to %s %s: it differed before (written earlier)", target, between)
	}
	return fmt.Sprintf("localisation: the %s to %s %s are the same on both sides",
		compare.Plural(len(ws[0].writes), "write", "writes"), target, between)
}

// watch runs g from where it is to the sync point, recording every store
// to the word at addr, at most budget of them. Where the watchpoint stops
// before the store (Arch.WatchBefore: aarch64, riscv64 under QEMU), each
// hit is stepped over with the watchpoint removed, so the value written is
// read after the store and each store is counted once.
func (l *Localizer) watch(ctx context.Context, g *guest.Guest, addr uint64, size int, sp *scenario.SyncPoint, bound time.Duration, budget int) (watched, error) {
	var w watched
	brk, err := g.Resolve(sp.Break)
	if err != nil {
		return w, err
	}
	if err := g.Insert(ctx, g.BPKind, brk); err != nil {
		return w, err
	}
	defer g.RemoveAll(context.WithoutCancel(ctx))
	if err := g.T.InsertBreakpoint(ctx, rsp.WatchWrite, addr, size); err != nil {
		return w, fmt.Errorf("guest %s: watch %s: %w", g.Name(), g.Loc(addr), err)
	}
	defer g.T.RemoveBreakpoint(context.WithoutCancel(ctx), rsp.WatchWrite, addr, size)
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	hits := 0
	for {
		st, err := g.Cont(wctx)
		var f *guest.Fault
		switch {
		case errors.As(err, &f):
			return w, err
		case err != nil:
			w.why = fmt.Sprintf("the watch did not reach sync point %d within %s", l.syncNumber(sp), bound.Round(time.Millisecond))
			return w, nil
		case st.Exited():
			w.why = fmt.Sprintf("the guest exited before sync point %d", l.syncNumber(sp))
			return w, nil
		}
		pc, err := g.PC(ctx)
		if err != nil {
			return w, err
		}
		switch {
		case st.Watch != "":
			if len(w.writes) == budget {
				w.why = fmt.Sprintf("the budget of %d writes (localize.max_writes) ran out", budget)
				return w, nil
			}
			var at uint64
			mode := g.Mode(ctx)
			if g.Arch.WatchBefore {
				at = pc
				st, err := stepOverStore(wctx, g, addr, size)
				var f *guest.Fault
				switch {
				case errors.As(err, &f):
					return w, err
				case err != nil:
					return w, fmt.Errorf("guest %s: step over the store at %s: %w", g.Name(), g.Loc(at), err)
				case st.Exited():
					w.why = fmt.Sprintf("the guest exited before sync point %d", l.syncNumber(sp))
					return w, nil
				}
				if pc, err = g.PC(ctx); err != nil {
					return w, err
				}
			}
			b, err := g.T.ReadMemory(ctx, addr, size)
			if err != nil {
				return w, fmt.Errorf("guest %s: read the watched word: %w", g.Name(), err)
			}
			w.writes = append(w.writes, write{value: g.Word(b), after: g.Loc(pc), at: at, mode: mode})
			if at != 0 && pc == brk {
				// The step over the store landed on the sync point.
				if hits++; hits >= sp.Hit {
					w.complete = true
					return w, nil
				}
			}
		case pc == brk:
			if hits++; hits >= sp.Hit {
				w.complete = true
				return w, nil
			}
		default:
			w.why = fmt.Sprintf("the guest stopped at %s before sync point %d", g.Loc(pc), l.syncNumber(sp))
			return w, nil
		}
	}
}

// stepOverStore executes the store a before-access write watchpoint
// stopped at: one step with the watchpoint (and a breakpoint of lockstep's
// at the store, if any) removed, then both re-inserted.
func stepOverStore(ctx context.Context, g *guest.Guest, addr uint64, size int) (rsp.StopReply, error) {
	rctx := context.WithoutCancel(ctx)
	pc, err := g.PC(rctx)
	if err != nil {
		return rsp.StopReply{}, err
	}
	if err := g.T.RemoveBreakpoint(rctx, rsp.WatchWrite, addr, size); err != nil {
		return rsp.StopReply{}, fmt.Errorf("remove the watchpoint: %w", err)
	}
	kind, bp := g.Breakpoints()[pc]
	if bp {
		if err := g.Remove(rctx, pc); err != nil {
			return rsp.StopReply{}, err
		}
	}
	st, err := g.Step(ctx)
	if err != nil || st.Exited() {
		return st, err
	}
	if bp {
		if err := g.Insert(rctx, kind, pc); err != nil {
			return st, err
		}
	}
	if err := g.T.InsertBreakpoint(rctx, rsp.WatchWrite, addr, size); err != nil {
		return st, fmt.Errorf("re-insert the watchpoint: %w", err)
	}
	return st, nil
}

// syncNumber is the 1-based number of sync point sp.
func (l *Localizer) syncNumber(sp *scenario.SyncPoint) int {
	for i := range l.E.Scenario().Sync {
		if &l.E.Scenario().Sync[i] == sp {
			return i + 1
		}
	}
	return 0
}

// stacksAtWrite rewinds to sync point k-1, runs each side to its store
// number idx (0-based) to the watched word, and returns both call paths
// there. A side with fewer stores gets none.
func (l *Localizer) stacksAtWrite(ctx context.Context, k, idx int, addrs [2]uint64, size int) ([2][]compare.Frame, error) {
	return l.stacksAt(ctx, k, idx, func(ctx context.Context, i int, g *guest.Guest) (armed, error) {
		if err := g.T.InsertBreakpoint(ctx, rsp.WatchWrite, addrs[i], size); err != nil {
			return armed{}, fmt.Errorf("guest %s: watch %s: %w", g.Name(), g.Loc(addrs[i]), err)
		}
		a := armed{
			event: func(st rsp.StopReply, _ uint64) bool { return st.Watch != "" },
			undo:  func() { g.T.RemoveBreakpoint(context.WithoutCancel(ctx), rsp.WatchWrite, addrs[i], size) },
		}
		if g.Arch.WatchBefore {
			// Stopped before the store: execute it before going on, or
			// the next continue stops at the same store again. The
			// wanted store's call path is taken at the store itself.
			a.pass = func(ctx context.Context) error {
				st, err := stepOverStore(ctx, g, addrs[i], size)
				if err == nil && st.Exited() {
					err = fmt.Errorf("guest %s: exited stepping over a store", g.Name())
				}
				return err
			}
		}
		return a, nil
	})
}

// firstWriteDivergence returns the index of the first write whose value or
// writing function differs between the sides, with a phrase saying how;
// -1 when the writes both sides recorded match. A side with more writes
// than the other counts only when the other side's writes were all seen.
// Values that point into symbols compare as symbol+offset between builds.
func (l *Localizer) firstWriteDivergence(p guest.Pair, ws [2]watched) (int, string) {
	sym := l.E.CallSymbolizers(p)
	w := [2][]write{ws[0].writes, ws[1].writes}
	n := min(len(w[0]), len(w[1]))
	for i := range n {
		a, b := w[0][i], w[1][i]
		if a.after.Symbol != b.after.Symbol {
			return i, fmt.Sprintf("by %s vs %s", a.after.Symbol, b.after.Symbol)
		}
		if a.value == b.value {
			continue
		}
		if sym[0] != nil {
			la, oka := sym[0](a.value)
			lb, okb := sym[1](b.value)
			if oka && okb && la.Symbol == lb.Symbol && la.Offset == lb.Offset {
				continue
			}
		}
		return i, fmt.Sprintf("in %s: %#x vs %#x", a.after.Symbol, a.value, b.value)
	}
	switch {
	case len(w[0]) > n && ws[1].complete:
		return n, fmt.Sprintf("only in a, in %s", w[0][n].after.Symbol)
	case len(w[1]) > n && ws[0].complete:
		return n, fmt.Sprintf("only in b, in %s", w[1][n].after.Symbol)
	}
	return -1, ""
}
