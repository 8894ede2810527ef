package localize

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// maxWrites bounds the writes to a watched word localisation records per
// side between two sync points.
const maxWrites = 256

// write is one store to a watched word, seen through a write watchpoint.
type write struct {
	value uint64
	// after is the PC after the storing instruction (x86 data watchpoints
	// trap after the store); stack is the call path there.
	after compare.Location
	stack []compare.Frame
}

// writes finds the store that made memory md differ at sync point k. For
// its first differing word it rewinds to sync point k-1, puts a write
// watchpoint on that word on each side (each through its own symbols, so
// it works between builds), records every store up to sync point k with
// the call path, and reports the first store whose value, or whose writer,
// differs: "write #1 to results+0x28 in kmain: 0x…11 vs 0x…12".
func (l *Localizer) writes(ctx context.Context, k int, md *compare.MemoryDiff) ([]compare.Divergence, error) {
	e := l.E
	p, err := l.RW.At(ctx, k-1)
	if err != nil {
		return nil, err
	}
	ps := uint64(p[0].Arch.PtrSize)
	word := uint64(md.FirstOffset) &^ (ps - 1)
	var addrs [2]uint64
	for i := range addrs {
		addrs[i] = md.Addr[i] + word
	}
	target := fmt.Sprintf("%s+%#x", md.Name, word)
	t0 := time.Now()
	sp := &e.Scenario().Sync[k]
	bound := e.WaitBound(ctx, sp)
	var ws [2][]write
	var complete [2]bool
	err = p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		var err error
		ws[i], complete[i], err = l.watch(ctx, g, addrs[i], int(ps), sp, bound)
		return err
	})
	if err != nil {
		if errors.Is(err, rsp.ErrUnsupported) || errors.Is(err, rsp.ErrRefused) {
			e.Notef("localisation: no write watchpoint on %s (%v)", target, err)
			return nil, nil
		}
		return nil, err
	}
	e.Logf("write localisation of %s took %s: %d and %d writes", target, time.Since(t0).Round(time.Millisecond), len(ws[0]), len(ws[1]))
	if !complete[0] || !complete[1] {
		e.Notef("localisation: the writes to %s were not all seen (more than %d, or a side did not reach sync point %d)", target, maxWrites, k+1)
	}
	idx, why := l.firstWriteDivergence(p, ws)
	if idx < 0 && len(ws[0]) == 0 {
		e.Notef("localisation: nothing stores to %s between sync points %d and %d: it differed before (data built into the image, or written earlier)", target, k, k+1)
		return nil, nil
	}
	if idx < 0 {
		e.Notef("localisation: the %s to %s between sync points %d and %d are the same on both sides",
			compare.Plural(len(ws[0]), "write", "writes"), target, k, k+1)
		return nil, nil
	}
	id := &compare.InstructionDiff{Granularity: compare.ByWrite}
	var pcs [2]compare.Location
	for i, g := range p {
		if idx >= len(ws[i]) {
			id.Disasm[i] = "(no such write)"
			continue
		}
		w := ws[i][idx]
		pcs[i] = w.after
		id.Disasm[i] = fmt.Sprintf("store %#x to %s (before %s)", w.value, g.Loc(addrs[i]), w.after)
		if at, text, code, ok := g.InsnBefore(w.after.Addr); ok {
			pcs[i] = g.Loc(at)
			id.Disasm[i] = fmt.Sprintf("%s  (stores %#x to %s)", text, w.value, g.Loc(addrs[i]))
			id.Bytes[i] = hex.EncodeToString(code)
		}
		id.CallPath[i] = w.stack
	}
	d := e.At(k, compare.Divergence{Kind: compare.KindInstruction, PC: pcs, Instruction: id,
		Summary: fmt.Sprintf("localised between sync points %d and %d (by write watchpoint): write #%d to %s %s", k, k+1, idx+1, target, why)})
	return []compare.Divergence{d}, nil
}

// watch runs g from where it is to the sync point, recording every store
// to the word at addr. complete is false when the guest did not get to the
// sync point or stored more than maxWrites times.
func (l *Localizer) watch(ctx context.Context, g *guest.Guest, addr uint64, size int, sp *scenario.SyncPoint, bound time.Duration) ([]write, bool, error) {
	brk, err := g.Resolve(sp.Break)
	if err != nil {
		return nil, false, err
	}
	if err := g.Insert(ctx, g.BPKind, brk); err != nil {
		return nil, false, err
	}
	defer g.RemoveAll(context.WithoutCancel(ctx))
	if err := g.T.InsertBreakpoint(ctx, rsp.WatchWrite, addr, size); err != nil {
		return nil, false, fmt.Errorf("guest %s: watch %s: %w", g.Name(), g.Loc(addr), err)
	}
	defer g.T.RemoveBreakpoint(context.WithoutCancel(ctx), rsp.WatchWrite, addr, size)
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var out []write
	hits := 0
	for len(out) <= maxWrites {
		st, err := g.Cont(wctx)
		var f *guest.Fault
		switch {
		case errors.As(err, &f):
			return out, false, err
		case err != nil || st.Exited():
			return out, false, nil
		}
		pc, err := g.PC(ctx)
		if err != nil {
			return out, false, err
		}
		switch {
		case st.Watch != "":
			b, err := g.T.ReadMemory(ctx, addr, size)
			if err != nil {
				return out, false, fmt.Errorf("guest %s: read the watched word: %w", g.Name(), err)
			}
			w := write{value: g.Word(b), after: g.Loc(pc)}
			if bt, _, err := g.Backtrace(ctx); err == nil {
				w.stack = bt
			}
			out = append(out, w)
		case pc == brk:
			if hits++; hits >= sp.Hit {
				return out, true, nil
			}
		default:
			return out, false, nil
		}
	}
	return out, false, nil
}

// firstWriteDivergence returns the index of the first write whose value or
// writing function differs between the sides, with a phrase saying how;
// -1 when the sequences match. Values that point into symbols compare as
// symbol+offset between builds.
func (l *Localizer) firstWriteDivergence(p guest.Pair, w [2][]write) (int, string) {
	sym := l.E.CallSymbolizers(p)
	for i := 0; i < len(w[0]) || i < len(w[1]); i++ {
		switch {
		case i >= len(w[0]):
			return i, fmt.Sprintf("only in b, in %s", w[1][i].after.Symbol)
		case i >= len(w[1]):
			return i, fmt.Sprintf("only in a, in %s", w[0][i].after.Symbol)
		}
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
	return -1, ""
}
