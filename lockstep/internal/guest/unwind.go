package guest

import (
	"context"
	"fmt"
	"slices"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/arch"
)

const (
	maxFrames   = 64
	maxFrameGap = 1 << 20 // a saved frame pointer further than this is not a frame
	scanBytes   = 8 << 10 // how much stack a scan reads
	maxScanned  = 32      // frames a stack scan keeps
)

// How a frame was found (compare.Frame.How).
const (
	HowPC   = "pc"   // the stopped pc itself
	HowORC  = "orc"  // the kernel's ORC tables
	HowCFI  = "cfi"  // DWARF call-frame information
	HowFP   = "fp"   // the frame-pointer chain
	HowScan = "scan" // a stack scan (Uncertain)
)

// Backtrace returns the guest's call path, outermost frame first. Each
// frame is unwound by the best information its image has for that pc: the
// kernel's ORC tables, else DWARF call-frame information (.debug_frame,
// .eh_frame), else the frame-pointer chain; where the chain is absent or
// broken it falls back to a stack scan that keeps the words that land just
// after a call instruction in a text symbol, and marks those frames
// Uncertain. Every frame says in How which of these found it. Inlined
// calls stay in each frame's Location (gdb shows them as frames of their
// own). note, when not empty, says why the path is short.
func (g *Guest) Backtrace(ctx context.Context) (frames []compare.Frame, note string, err error) {
	a := g.Arch
	regs, err := g.coreRegisters(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("backtrace: %w", err)
	}
	pc := regs[a.PC]
	x86 := a.Name == "x86_64" || a.Name == "i386"
	if cr0, ok := regs["cr0"]; ok && x86 && cr0&1 == 0 {
		// Real mode: segmented addresses, no frame layout to follow.
		return []compare.Frame{{Location: g.Loc(pc), How: HowPC}}, fmt.Sprintf("guest %s: in real mode (cr0.PE clear): no call path beyond the pc", g.Name()), nil
	}

	frames = []compare.Frame{{Location: g.Loc(pc), How: HowPC}}
	u, note := g.unwinder()
	st := unwindState{regs: regs}
	for len(frames) < maxFrames {
		next, how, status := u.step(ctx, st)
		if status == unwindEnd {
			break
		}
		if status == unwindNone {
			// Neither ORC nor CFI covers this pc: frame pointers, then a scan.
			pc, sp, fp := st.regs[a.PC], st.regs[a.SP], st.regs[a.FP]
			if walked, ok := g.walkFrames(ctx, pc, sp, fp, func(n string) uint64 { return st.regs[n] }, len(frames) > 1); ok {
				for _, f := range walked {
					f.How = HowFP
					frames = append(frames, f)
				}
			} else {
				scanned := g.scanStack(ctx, sp)
				if len(scanned) == 0 && len(frames) == 1 && note == "" {
					note = fmt.Sprintf("guest %s: no unwind table (ORC, CFI) covers pc %#x, no frame-pointer chain and no return addresses found on the stack at %#x", g.Name(), pc, sp)
				}
				frames = append(frames, scanned...)
			}
			break
		}
		npc := next.regs[a.PC]
		if npc == 0 || g.Syms == nil || !g.Syms.IsText(npc) && (next.signal || !g.Syms.IsText(npc-1)) {
			break
		}
		if nsp, sp := next.regs[a.SP], st.regs[a.SP]; (nsp < sp || nsp == sp && (a.Link == "" || npc == st.regs[a.PC])) && !next.signal {
			// The stack only grows back up; anything else is a loop. With a
			// link register a leaf's caller has the same stack pointer.
			break
		}
		loc := g.ReturnLoc(npc)
		if next.signal {
			loc = g.Loc(npc) // an interrupted pc, not a return address
		}
		frames = append(frames, compare.Frame{Location: loc, How: how})
		st = next
	}
	if len(frames) > maxFrames {
		frames = frames[:maxFrames]
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

// coreRegisters reads the registers of the 'g' packet (one read) as
// numbers; registers wider than 64 bits are left out.
func (g *Guest) coreRegisters(ctx context.Context) (map[string]uint64, error) {
	var names []string
	for _, r := range g.T.Layout().Registers {
		if r.Offset >= 0 && r.BitSize <= 64 {
			names = append(names, r.Name)
		}
	}
	extra := []string{g.Arch.PC, g.Arch.SP, g.Arch.FP, g.Arch.Link}
	if _, ok := g.T.Layout().Lookup("cr0"); ok && (g.Arch.Name == "x86_64" || g.Arch.Name == "i386") {
		extra = append(extra, "cr0") // real mode has no frames to follow
	}
	for _, n := range extra {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	vals, err := g.Registers(ctx, names...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(vals))
	for n, v := range vals {
		if u, ok := v.Uint64(); ok {
			out[n] = u
		}
	}
	return out, nil
}

// walkFrames follows the frame-pointer chain (Arch.FrameRecord), or on
// s390x the stack back chain (Arch.BackChain, present when the guest is
// built with -mbackchain). At a function's first instruction the frame is
// not yet set up: the return address is at the stack pointer (or in the
// link register) and fp still belongs to the caller. In a leaf function
// that keeps its return address in the link register and sets up no frame
// record, the chain starts at its caller's record: the link register,
// when it holds a return address into another function that the chain
// does not give first, is the innermost caller.
//
// caller is true when pc is a return address in a caller frame, where
// the frame is always set up.
func (g *Guest) walkFrames(ctx context.Context, pc, sp, fp uint64, get func(string) uint64, caller bool) ([]compare.Frame, bool) {
	a := g.Arch
	ps := uint64(a.PtrSize)
	base := fp
	switch {
	case a.FrameRecord != nil:
	case a.BackChain != nil:
		base = sp
	default:
		return nil, false
	}
	var out []compare.Frame
	var ret uint64
	l, _ := g.Symbolize(pc)
	atEntry := !caller && l.Symbol != "" && l.Offset == 0
	s390Ret, s390Base, s390OK := g.s390xInnermost(ctx, l, sp, get, caller)
	switch {
	case s390OK:
		ret, base = s390Ret, s390Base
	case atEntry && a.Link != "":
		ret = get(a.Link)
	case atEntry:
		w, err := g.readWord(ctx, sp)
		if err != nil {
			return nil, false
		}
		ret = w
	case !caller && l.Symbol != "" && l.Offset == 1 && a.Name == "x86_64":
		// After "push %rbp", before "mov %rsp,%rbp".
		w, err := g.readWord(ctx, sp+ps)
		if err != nil {
			return nil, false
		}
		ret = w
	default:
		next, rv, err := g.frameAt(ctx, base)
		chainOK := err == nil && g.isReturn(ctx, rv)
		if link, ok := g.leafLink(ctx, pc, get, caller); ok && (!chainOK || link != rv) {
			// A leaf: the chain starts at the caller's record, which fp
			// points at unless the leaf made a record of its own.
			ret = link
			if !chainOK {
				base = g.leafCallerFP(ctx, base)
			}
			break
		}
		if !chainOK {
			return nil, false
		}
		ret = rv
		if next != 0 && (next <= base || next-base > maxFrameGap) {
			return []compare.Frame{{Location: g.ReturnLoc(ret)}}, true
		}
		base = next
	}
	for len(out) < maxFrames {
		if !g.isReturn(ctx, ret) {
			break
		}
		out = append(out, compare.Frame{Location: g.ReturnLoc(ret)})
		if base == 0 {
			break
		}
		next, rv, err := g.frameAt(ctx, base)
		if err != nil {
			break
		}
		ret = rv
		if next != 0 && (next <= base || next-base > maxFrameGap) {
			if g.isReturn(ctx, ret) {
				out = append(out, compare.Frame{Location: g.ReturnLoc(ret)})
			}
			break
		}
		base = next
	}
	return out, len(out) > 0
}

// leafLink returns the link register when it holds a plausible return
// address into a function other than pc's: in the innermost frame of an
// architecture with a link register, that is the return address of a leaf
// that has not saved it (after a call, the link register points into the
// function itself).
func (g *Guest) leafLink(ctx context.Context, pc uint64, get func(string) uint64, caller bool) (uint64, bool) {
	a := g.Arch
	if caller || a.Link == "" || g.Syms == nil {
		return 0, false
	}
	link := get(a.Link)
	if link == 0 || !g.isReturn(ctx, link) {
		return 0, false
	}
	here, ok1 := g.Syms.Symbolize(pc)
	there, ok2 := g.Syms.Symbolize(link - 1)
	if !ok1 || !ok2 || here.Symbol == "" || here.Symbol == there.Symbol && here.Addr-here.Offset == there.Addr-there.Offset {
		return 0, false
	}
	return link, true
}

// s390xInnermost finds, on s390x, the innermost frame's return address and
// its caller's stack pointer (the base of the back chain from there) by
// reading the function's code up to pc (arch.S390XFrame): r14, or the slot
// of the caller's register save area the prologue saved it to. Caller
// frames' return addresses are in their callers' save areas, found through
// the back chain.
func (g *Guest) s390xInnermost(ctx context.Context, l compare.Location, sp uint64, get func(string) uint64, caller bool) (ret, callerSP uint64, ok bool) {
	if caller || g.Arch.Name != "s390x" || l.Symbol == "" || l.Offset > 1<<16 || g.Syms == nil {
		return 0, 0, false
	}
	start := l.Addr - l.Offset
	code, err := g.Syms.ReadAt(start, int(l.Offset))
	if err != nil {
		if code, err = g.T.ReadMemory(ctx, start, int(l.Offset)); err != nil {
			return 0, 0, false
		}
	}
	delta, off, saved, ok := arch.S390XFrame(code)
	if !ok {
		return 0, 0, false
	}
	callerSP = sp - uint64(delta)
	ret = get(g.Arch.Link)
	if saved {
		if ret, err = g.readWord(ctx, callerSP+uint64(off)); err != nil {
			return 0, 0, false
		}
	}
	return ret, callerSP, true
}

// leafCallerFP returns the caller's frame pointer in a leaf whose frame
// pointer points at a frame of its own without the return address: GCC's
// riscv leaf functions save only the caller's fp, just below their own
// (where a full record has the return address). 0 when there is none.
func (g *Guest) leafCallerFP(ctx context.Context, fp uint64) uint64 {
	r := g.Arch.FrameRecord
	if r == nil || r.PrevFP >= 0 {
		return 0
	}
	w, err := g.readWord(ctx, fp-uint64(g.Arch.PtrSize))
	if err != nil || w <= fp || w-fp > maxFrameGap {
		return 0
	}
	if _, rv, err := g.frameAt(ctx, w); err != nil || rv != 0 && !g.isReturn(ctx, rv) {
		return 0
	}
	return w
}

// frameAt reads, for the frame whose base (frame pointer, or s390x stack
// pointer) is base, the caller's base and the return address: from the
// frame record at base (Arch.FrameRecord), or through the back chain: the
// caller's stack pointer at base, the return address in the caller's
// register save area (Arch.BackChain).
func (g *Guest) frameAt(ctx context.Context, base uint64) (next, ret uint64, err error) {
	a := g.Arch
	ps := int64(a.PtrSize)
	switch {
	case a.FrameRecord != nil:
		r := a.FrameRecord
		lo := min(r.PrevFP, r.RetAddr)
		b, err := g.T.ReadMemory(ctx, base+uint64(lo), int(max(r.PrevFP, r.RetAddr)-lo+ps))
		if err != nil {
			return 0, 0, err
		}
		return g.Word(b[r.PrevFP-lo : r.PrevFP-lo+ps]), g.Word(b[r.RetAddr-lo : r.RetAddr-lo+ps]), nil
	case a.BackChain != nil:
		next, err := g.readWord(ctx, base+uint64(a.BackChain.PrevFP))
		if err != nil || next == 0 {
			return 0, 0, err
		}
		ret, err := g.readWord(ctx, next+uint64(a.BackChain.RetAddr))
		return next, ret, err
	}
	return 0, 0, fmt.Errorf("guest %s: %s has no frame chain", g.Name(), a.Name)
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
//
// The call is checked at addr-1: a call to a noreturn function can be the
// last instruction of its function, even of the text.
func (g *Guest) isReturn(ctx context.Context, addr uint64) bool {
	if g.Syms == nil || addr == 0 || !g.Syms.IsText(addr-1) {
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
			out = append(out, compare.Frame{Location: g.ReturnLoc(w), Uncertain: true, How: HowScan})
		}
	}
	return out
}
