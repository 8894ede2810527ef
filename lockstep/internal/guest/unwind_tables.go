package guest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/lockstep-dev/lockstep/lockstep/symbols"
)

// unwindState is one frame's registers while unwinding: the core set at
// the stop, then what the unwind tables recover for each caller.
type unwindState struct {
	regs map[string]uint64
	// signal is true when pc is where the frame was interrupted (a pt_regs
	// frame), not a return address: tables are looked up at pc, not pc-1.
	signal bool
	// caller is true for every frame but the innermost one.
	caller bool
}

type unwindStatus int

const (
	unwindOK   unwindStatus = iota
	unwindNone              // no table covers the pc, or its rule cannot be applied: use frame pointers
	unwindEnd               // the tables say this is the outermost frame
)

// unwinder steps from one frame to its caller with the tables of one
// image, read lazily (the first backtrace reads them).
type unwinder struct {
	g   *Guest
	orc *symbols.ORCTable
	cfi *symbols.CFITable
	// stack caches the stack memory read so far, in aligned chunks:
	// neighbouring frames share them, so a backtrace costs a few reads.
	stack map[uint64][]byte
}

// stackChunk is the unit of stack reads: aligned, so a chunk never
// crosses a page.
const stackChunk = 256

// word reads the pointer-sized word at addr through the stack cache.
func (u *unwinder) word(ctx context.Context, addr uint64) (uint64, error) {
	ps := uint64(u.g.Arch.PtrSize)
	base := addr &^ (stackChunk - 1)
	if addr+ps > base+stackChunk || addr%ps != 0 {
		return u.g.readWord(ctx, addr)
	}
	c, ok := u.stack[base]
	if !ok {
		b, err := u.g.T.ReadMemory(ctx, base, stackChunk)
		if err != nil {
			return u.g.readWord(ctx, addr) // a chunk straddling unmapped memory
		}
		if u.stack == nil {
			u.stack = map[uint64][]byte{}
		}
		u.stack[base], c = b, b
	}
	off := addr - base
	return u.g.Word(c[off : off+ps]), nil
}

// unwinder returns the unwinder for the guest's image; its tables are
// nil when the image has none (or no symbols file is given). note says
// why a table the image has could not be used ("" when all is well).
func (g *Guest) unwinder() (u *unwinder, note string) {
	u = &unwinder{g: g}
	if g.Syms == nil {
		return u, ""
	}
	var errs []string
	if g.Arch.Name == "x86_64" {
		var err error
		// ErrNoORC: not a kernel built with ORC.
		if u.orc, err = g.Syms.ORC(); err != nil && !errors.Is(err, symbols.ErrNoORC) {
			errs = append(errs, err.Error())
		}
	}
	var err error
	// ErrNoCFI: frame pointers and the scan remain.
	if u.cfi, err = g.Syms.CFI(); err != nil && !errors.Is(err, symbols.ErrNoCFI) {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		note = fmt.Sprintf("guest %s: unwind tables not used: %s", g.Name(), strings.Join(errs, "; "))
	}
	return u, note
}

// step unwinds st to its caller: by ORC when the image has ORC tables
// covering the pc, else by CFI when an FDE covers it; unwindNone when
// neither does or the rule cannot be applied (a DWARF expression, an
// unreadable stack word), so that frame pointers and the scan get their
// turn.
func (u *unwinder) step(ctx context.Context, st unwindState) (unwindState, string, unwindStatus) {
	pc := st.regs[u.g.Arch.PC]
	look := pc
	if st.caller && !st.signal && look > 0 {
		look-- // the call instruction, which may be the last of its function
	}
	if u.orc != nil {
		if e, ok := u.orc.Lookup(look); ok && e.Type != symbols.ORCUndefined {
			next, status := u.orcStep(ctx, st, e)
			return next, HowORC, status
		}
	}
	if u.cfi != nil {
		if row, ok := u.cfi.Lookup(look); ok {
			next, status := u.cfiStep(ctx, st, row)
			return next, HowCFI, status
		}
	}
	return st, "", unwindNone
}

// cfiStep applies a CFI row: the CFA is the caller's stack pointer, the
// return-address column its pc, and every register with a rule is
// recovered from memory or another register.
func (u *unwinder) cfiStep(ctx context.Context, st unwindState, row symbols.CFIRow) (unwindState, unwindStatus) {
	a := u.g.Arch
	name := func(r uint64) string {
		if r < uint64(len(a.DWARFRegs)) {
			return a.DWARFRegs[r]
		}
		return ""
	}
	if row.CFA.Kind != symbols.CFIRegOffset {
		return st, unwindNone // a CFA expression: not evaluated
	}
	base, ok := st.regs[name(row.CFA.Reg)]
	if !ok {
		return st, unwindNone
	}
	cfa := base + uint64(row.CFA.Offset)
	next := unwindState{regs: maps.Clone(st.regs), caller: true}
	raName := name(row.RA)
	if raName == "" {
		return st, unwindNone
	}
	// With no rule for it, the return address is where it was: in the
	// link register (x30) or, for a return-address column that is not a
	// real register (x86-64's 16), undefined.
	if _, ok := row.Regs[row.RA]; !ok && raName == a.PC {
		return st, unwindEnd
	}
	for r, rule := range row.Regs {
		n := name(r)
		if n == "" {
			continue
		}
		switch rule.Kind {
		case symbols.CFISame:
		case symbols.CFIUndefined:
			if r == row.RA {
				return st, unwindEnd // the outermost frame
			}
			delete(next.regs, n)
		case symbols.CFIOffset:
			w, err := u.word(ctx, cfa+uint64(rule.Offset))
			if err != nil {
				return st, unwindNone
			}
			next.regs[n] = w
		case symbols.CFIValOffset:
			next.regs[n] = cfa + uint64(rule.Offset)
		case symbols.CFIRegister:
			v, ok := st.regs[name(rule.Reg)]
			if !ok && !st.caller && name(rule.Reg) != "" {
				// Saved in a register outside the 'g' packet (s390x's
				// leaf functions keep r11 in f0): read it, in the
				// innermost frame only, where it is still live.
				if vals, err := u.g.Registers(ctx, name(rule.Reg)); err == nil {
					v, ok = vals[name(rule.Reg)].Uint64()
				}
			}
			if !ok {
				return st, unwindNone
			}
			next.regs[n] = v
		default:
			if r == row.RA {
				return st, unwindNone
			}
			delete(next.regs, n)
		}
	}
	next.regs[a.PC] = next.regs[raName]
	next.regs[a.SP] = cfa
	return next, unwindOK
}

// pt_regs offsets on x86-64 (arch/x86/include/asm/ptrace.h) and what an
// ORC pt_regs frame restores from them.
const (
	ptRegsIP    = 128
	ptRegsSP    = 152
	iretFrameSP = 24 // sp in the iret frame, from ip
)

var ptRegs = map[string]uint64{
	"r15": 0, "r14": 8, "r13": 16, "r12": 24, "rbp": 32, "rbx": 40, "r11": 48, "r10": 56,
	"r9": 64, "r8": 72, "rax": 80, "rcx": 88, "rdx": 96, "rsi": 104, "rdi": 112,
}

// orcStep applies one ORC entry as the kernel's unwinder does
// (arch/x86/kernel/unwind_orc.c, unwind_next_frame).
func (u *unwinder) orcStep(ctx context.Context, st unwindState, e symbols.ORCEntry) (unwindState, unwindStatus) {
	if e.Type == symbols.ORCEnd || e.SPReg == symbols.ORCRegUndefined {
		return st, unwindEnd
	}
	r := st.regs
	var sp uint64
	indirect := false
	switch e.SPReg {
	case symbols.ORCRegSP:
		sp = r["rsp"] + uint64(int64(e.SPOffset))
	case symbols.ORCRegBP:
		sp = r["rbp"] + uint64(int64(e.SPOffset))
	case symbols.ORCRegSPIndirect:
		sp, indirect = r["rsp"], true
	case symbols.ORCRegBPIndirect:
		sp, indirect = r["rbp"]+uint64(int64(e.SPOffset)), true
	case symbols.ORCRegR10:
		sp = r["r10"]
	case symbols.ORCRegR13:
		sp = r["r13"]
	case symbols.ORCRegDI:
		sp = r["rdi"]
	case symbols.ORCRegDX:
		sp = r["rdx"]
	default:
		return st, unwindNone
	}
	if indirect {
		w, err := u.word(ctx, sp)
		if err != nil {
			return st, unwindNone
		}
		sp = w
		if e.SPReg == symbols.ORCRegSPIndirect {
			sp += uint64(int64(e.SPOffset))
		}
	}
	next := unwindState{regs: maps.Clone(r), caller: true}
	switch e.Type {
	case symbols.ORCCall:
		ip, err := u.word(ctx, sp-8)
		if err != nil {
			return st, unwindNone
		}
		next.regs["rip"], next.regs["rsp"] = ip, sp
		next.signal = e.Signal
	case symbols.ORCRegs:
		b, err := u.g.T.ReadMemory(ctx, sp, ptRegsSP+8)
		if err != nil {
			return st, unwindNone
		}
		for n, off := range ptRegs {
			next.regs[n] = u.g.Word(b[off : off+8])
		}
		next.regs["rip"], next.regs["rsp"] = u.g.Word(b[ptRegsIP:ptRegsIP+8]), u.g.Word(b[ptRegsSP:ptRegsSP+8])
		next.signal = true
	case symbols.ORCRegsPartial:
		b, err := u.g.T.ReadMemory(ctx, sp, iretFrameSP+8)
		if err != nil {
			return st, unwindNone
		}
		next.regs["rip"], next.regs["rsp"] = u.g.Word(b[0:8]), u.g.Word(b[iretFrameSP:iretFrameSP+8])
		next.signal = true
	default:
		return st, unwindNone
	}
	switch e.BPReg {
	case symbols.ORCRegPrevSP:
		w, err := u.word(ctx, sp+uint64(int64(e.BPOffset)))
		if err != nil {
			return st, unwindNone
		}
		next.regs["rbp"] = w
	case symbols.ORCRegBP:
		w, err := u.word(ctx, r["rbp"]+uint64(int64(e.BPOffset)))
		if err != nil {
			return st, unwindNone
		}
		next.regs["rbp"] = w
	}
	return next, unwindOK
}
