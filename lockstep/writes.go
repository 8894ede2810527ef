package lockstep

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
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

// localizeWrites finds the store that made memory differ at sync point k.
// For the first differing word of the first memory divergence there, it
// replays a fresh pair of guests to sync point k-1, puts a write
// watchpoint on that word on each side (each through its own symbols, so
// it works between builds), records every store up to sync point k with
// the call path, and reports the first store whose value, or whose writer,
// differs: "write #1 to results+0x28 in kmain: 0x…11 vs 0x…12".
func (r *run) localizeWrites(ctx context.Context, k int) error {
	var md *compare.MemoryDiff
	for _, d := range r.res.Divergences {
		if d.Sync == k && d.Kind == compare.KindMemory && !d.Noise && d.Memory != nil && d.Memory.Length > 0 &&
			d.Memory.Space != scenario.SpacePhysical {
			md = d.Memory
			break
		}
	}
	if md == nil {
		return nil
	}
	ps := uint64(r.sides[0].arch.PtrSize)
	word := uint64(md.FirstOffset) &^ (ps - 1)
	var addrs [2]uint64
	for i := range addrs {
		addrs[i] = md.Addr[i] + word
	}
	target := fmt.Sprintf("%s+%#x", md.Name, word)
	r.progress("localising", k)
	t0 := time.Now()
	pair, closePair, ok, err := r.freshPairAt(ctx, k-1)
	defer closePair()
	if err != nil || !ok {
		return err
	}
	sp := &r.sc.Sync[k]
	bound := r.waitBound(ctx, sp)
	var writes [2][]write
	var complete [2]bool
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range pair {
		g.Go(func() error {
			var err error
			writes[i], complete[i], err = r.watchWrites(gctx, s, addrs[i], int(ps), sp, bound)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		var pe *rsp.ProtocolError
		if errors.Is(err, rsp.ErrUnsupported) || errors.As(err, &pe) {
			r.note("localisation: no write watchpoint on %s (%v)", target, err)
			return nil
		}
		return infra(err)
	}
	r.logf("write localisation of %s took %s: %d and %d writes", target, time.Since(t0).Round(time.Millisecond), len(writes[0]), len(writes[1]))
	if !complete[0] || !complete[1] {
		r.note("localisation: the writes to %s were not all seen (more than %d, or a side did not reach sync point %d)", target, maxWrites, k+1)
	}
	idx, why := r.firstWriteDivergence(writes)
	if idx < 0 && len(writes[0]) == 0 {
		r.note("localisation: nothing stores to %s between sync points %d and %d: it differed before (data built into the image, or written earlier)", target, k, k+1)
		return nil
	}
	if idx < 0 {
		r.note("localisation: the %s to %s between sync points %d and %d are the same on both sides",
			plural(len(writes[0]), "write", "writes"), target, k, k+1)
		return nil
	}
	id := &compare.InstructionDiff{Granularity: "write"}
	var pcs [2]compare.Location
	for i, s := range pair {
		if idx < len(writes[i]) {
			w := writes[i][idx]
			pcs[i] = w.after
			id.Disasm[i] = fmt.Sprintf("store %#x to %s (before %s)", w.value, s.loc(addrs[i]), w.after)
			if at, text, code, ok := s.insnBefore(w.after.Addr); ok {
				pcs[i] = s.loc(at)
				id.Disasm[i] = fmt.Sprintf("%s  (stores %#x to %s)", text, w.value, s.loc(addrs[i]))
				id.Bytes[i] = hex.EncodeToString(code)
			}
			id.CallPath[i] = w.stack
		} else {
			id.Disasm[i] = "(no such write)"
		}
	}
	r.diverge(k, compare.Divergence{Kind: compare.KindInstruction, PC: pcs, Instruction: id,
		Summary: fmt.Sprintf("localised between sync points %d and %d (by write watchpoint): write #%d to %s %s", k, k+1, idx+1, target, why)})
	return nil
}

// watchWrites runs side s from where it is to the sync point, recording
// every store to the word at addr. complete is false when the side did not
// get to the sync point or stored more than maxWrites times.
func (r *run) watchWrites(ctx context.Context, s *side, addr uint64, size int, sp *scenario.SyncPoint, bound time.Duration) ([]write, bool, error) {
	brk, err := s.resolve(sp.Break)
	if err != nil {
		return nil, false, err
	}
	if err := s.insert(ctx, s.bpKind, brk); err != nil {
		return nil, false, err
	}
	if err := s.rsp.InsertBreakpoint(ctx, rsp.WatchWrite, addr, size); err != nil {
		return nil, false, fmt.Errorf("guest %s: watch %s: %w", s.name(), s.loc(addr), err)
	}
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var out []write
	hits := 0
	for len(out) <= maxWrites {
		st, err := s.cont(wctx)
		if err != nil || s.exited || st.Kind == 'W' || st.Kind == 'X' {
			return out, false, nil
		}
		pc, err := s.pc(ctx)
		if err != nil {
			return out, false, err
		}
		switch {
		case st.Watch != "":
			b, err := s.rsp.ReadMemory(ctx, addr, size)
			if err != nil {
				return out, false, err
			}
			w := write{value: s.word(b), after: s.loc(pc)}
			if bt, err := r.backtrace(ctx, s); err == nil {
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
func (r *run) firstWriteDivergence(w [2][]write) (int, string) {
	sym := r.callSymbolizers()
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

// insnBefore finds the instruction that ends at addr by decoding its
// function from the start (a linear sweep over the symbol file's code,
// sound for compiler output), and returns its address, text and bytes.
func (s *side) insnBefore(addr uint64) (uint64, string, []byte, bool) {
	l, ok := s.symbolize(addr)
	if !ok || s.syms == nil || s.arch.Disasm == nil || l.Offset == 0 || l.Offset > 1<<16 {
		return 0, "", nil, false
	}
	start := addr - l.Offset
	code, err := s.syms.ReadAt(start, int(l.Offset))
	if err != nil {
		return 0, "", nil, false
	}
	sym := func(a uint64) string { return s.loc(a).String() }
	for off := 0; off < len(code); {
		pc := start + uint64(off)
		text, n, err := s.arch.Disasm(code[off:], pc, sym)
		if err != nil || n <= 0 {
			return 0, "", nil, false
		}
		if off+n == len(code) {
			return pc, text, code[off:], true
		}
		off += n
	}
	return 0, "", nil, false
}
