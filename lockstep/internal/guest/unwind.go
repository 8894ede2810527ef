package guest

import (
	"context"
	"fmt"
	"slices"

	"github.com/lockstep-dev/lockstep/compare"
)

const (
	maxFrames   = 64
	maxFrameGap = 1 << 20 // a saved frame pointer further than this is not a frame
	scanBytes   = 8 << 10 // how much stack a scan reads
	maxScanned  = 32      // frames a stack scan keeps
)

// Backtrace returns the guest's call path, outermost frame first. It walks
// the frame-pointer chain; where that chain is absent or broken (Linux
// built with ORC keeps no frame pointers) it falls back to a stack scan
// that keeps the words that land just after a call instruction in a text
// symbol, and marks those frames Uncertain. note, when not empty, says why
// the path is short.
func (g *Guest) Backtrace(ctx context.Context) (frames []compare.Frame, note string, err error) {
	a := g.Arch
	want := []string{a.PC, a.SP, a.FP}
	if a.Link != "" {
		want = append(want, a.Link)
	}
	x86 := a.Name == "x86_64" || a.Name == "i386"
	if _, ok := g.T.Layout().Lookup("cr0"); ok && x86 {
		want = append(want, "cr0")
	}
	regs, err := g.Registers(ctx, want...)
	if err != nil {
		return nil, "", fmt.Errorf("backtrace: %w", err)
	}
	get := func(n string) uint64 { v, _ := regs[n].Uint64(); return v }
	pc, sp, fp := get(a.PC), get(a.SP), get(a.FP)
	if cr0, ok := regs["cr0"]; ok && x86 {
		if v, _ := cr0.Uint64(); v&1 == 0 {
			// Real mode: segmented addresses, no frame layout to follow.
			return []compare.Frame{{Location: g.Loc(pc)}}, fmt.Sprintf("guest %s: in real mode (cr0.PE clear): no call path beyond the pc", g.Name()), nil
		}
	}

	frames = []compare.Frame{{Location: g.Loc(pc)}}
	if walked, ok := g.walkFrames(ctx, pc, sp, fp, get); ok {
		frames = append(frames, walked...)
	} else {
		scanned := g.scanStack(ctx, sp)
		if len(scanned) == 0 {
			note = fmt.Sprintf("guest %s: no frame-pointer chain and no return addresses found on the stack at %#x", g.Name(), sp)
		}
		frames = append(frames, scanned...)
	}
	slices.Reverse(frames)
	return frames, note, nil
}

// SP reads the stack pointer.
func (g *Guest) SP(ctx context.Context) (uint64, error) {
	regs, err := g.Registers(ctx, g.Arch.SP)
	if err != nil {
		return 0, err
	}
	sp, _ := regs[g.Arch.SP].Uint64()
	return sp, nil
}

// ReturnAddress returns, at a function's first instruction, where it will
// return to (the link register, or the word at the stack pointer) and the
// stack pointer there.
func (g *Guest) ReturnAddress(ctx context.Context) (ret, sp uint64, err error) {
	want := []string{g.Arch.SP}
	if g.Arch.Link != "" {
		want = append(want, g.Arch.Link)
	}
	regs, err := g.Registers(ctx, want...)
	if err != nil {
		return 0, 0, err
	}
	sp, _ = regs[g.Arch.SP].Uint64()
	if g.Arch.Link != "" {
		ret, _ = regs[g.Arch.Link].Uint64()
		return ret, sp, nil
	}
	ret, err = g.readWord(ctx, sp)
	if err != nil {
		return 0, 0, fmt.Errorf("guest %s: return address at %#x: %w", g.Name(), sp, err)
	}
	return ret, sp, nil
}

// walkFrames follows the frame-pointer chain. At a function's first
// instruction the frame is not yet set up: the return address is at the
// stack pointer (or in the link register) and fp still belongs to the
// caller.
func (g *Guest) walkFrames(ctx context.Context, pc, sp, fp uint64, get func(string) uint64) ([]compare.Frame, bool) {
	a := g.Arch
	ps := uint64(a.PtrSize)
	var out []compare.Frame
	var ret uint64
	l, _ := g.Symbolize(pc)
	switch {
	case l.Symbol != "" && l.Offset == 0 && a.Link != "":
		ret = get(a.Link)
	case l.Symbol != "" && l.Offset == 0:
		w, err := g.readWord(ctx, sp)
		if err != nil {
			return nil, false
		}
		ret = w
	case l.Symbol != "" && l.Offset == 1 && a.Name == "x86_64":
		// After "push %rbp", before "mov %rsp,%rbp".
		w, err := g.readWord(ctx, sp+ps)
		if err != nil {
			return nil, false
		}
		ret = w
	default:
		next, rv, err := g.frameAt(ctx, fp)
		if err != nil || !g.isReturn(ctx, rv) {
			return nil, false
		}
		ret = rv
		if next != 0 && (next <= fp || next-fp > maxFrameGap) {
			return []compare.Frame{{Location: g.ReturnLoc(ret)}}, true
		}
		fp = next
	}
	for len(out) < maxFrames {
		if !g.isReturn(ctx, ret) {
			break
		}
		out = append(out, compare.Frame{Location: g.ReturnLoc(ret)})
		if fp == 0 {
			break
		}
		next, rv, err := g.frameAt(ctx, fp)
		if err != nil {
			break
		}
		ret = rv
		if next != 0 && (next <= fp || next-fp > maxFrameGap) {
			if g.isReturn(ctx, ret) {
				out = append(out, compare.Frame{Location: g.ReturnLoc(ret)})
			}
			break
		}
		fp = next
	}
	return out, len(out) > 0
}

// frameAt reads the saved frame pointer and return address of the frame at fp.
func (g *Guest) frameAt(ctx context.Context, fp uint64) (next, ret uint64, err error) {
	ps := g.Arch.PtrSize
	b, err := g.T.ReadMemory(ctx, fp, 2*ps)
	if err != nil {
		return 0, 0, err
	}
	return g.Word(b[:ps]), g.Word(b[ps:]), nil
}

func (g *Guest) readWord(ctx context.Context, addr uint64) (uint64, error) {
	b, err := g.T.ReadMemory(ctx, addr, g.Arch.PtrSize)
	if err != nil {
		return 0, err
	}
	return g.Word(b), nil
}

// isReturn reports whether addr is a plausible return address: inside a
// text symbol and just after a call instruction.
func (g *Guest) isReturn(ctx context.Context, addr uint64) bool {
	if g.Syms == nil || addr == 0 || !g.Syms.IsText(addr) {
		return false
	}
	if g.Arch.CallBefore == nil {
		return true
	}
	n := g.Arch.MaxCallLen
	if n == 0 || uint64(n) > addr {
		return false
	}
	code, err := g.Syms.ReadAt(addr-uint64(n), n)
	if err != nil {
		code, err = g.T.ReadMemory(ctx, addr-uint64(n), n)
		if err != nil {
			return false
		}
	}
	return g.Arch.CallBefore(code)
}

// scanStack keeps the stack words above sp that look like return addresses.
func (g *Guest) scanStack(ctx context.Context, sp uint64) []compare.Frame {
	var data []byte
	for n := scanBytes; n >= 256; n /= 2 {
		b, err := g.T.ReadMemory(ctx, sp, n)
		if err == nil {
			data = b
			break
		}
	}
	ps := g.Arch.PtrSize
	var out []compare.Frame
	for off := 0; off+ps <= len(data) && len(out) < maxScanned; off += ps {
		w := g.Word(data[off : off+ps])
		if g.isReturn(ctx, w) {
			out = append(out, compare.Frame{Location: g.ReturnLoc(w), Uncertain: true})
		}
	}
	return out
}
