package arch

import "golang.org/x/arch/x86/x86asm"

// x86ArgFamilies maps each 64-bit argument register to its narrower
// names, so that a read or write of esi or sil counts for rsi.
var x86ArgFamilies = [][]x86asm.Reg{
	{x86asm.RDI, x86asm.EDI, x86asm.DI, x86asm.DIB},
	{x86asm.RSI, x86asm.ESI, x86asm.SI, x86asm.SIB},
	{x86asm.RDX, x86asm.EDX, x86asm.DX, x86asm.DL, x86asm.DH},
	{x86asm.RCX, x86asm.ECX, x86asm.CX, x86asm.CL, x86asm.CH},
	{x86asm.R8, x86asm.R8L, x86asm.R8W, x86asm.R8B},
	{x86asm.R9, x86asm.R9L, x86asm.R9W, x86asm.R9B},
}

// x86ArgIndex returns which argument register r belongs to, whether the
// name covers the whole register for a write (64 or 32 bits: a 32-bit
// write zero-extends), and false when r is not an argument register.
func x86ArgIndex(r x86asm.Reg) (idx int, full bool, ok bool) {
	for i, fam := range x86ArgFamilies {
		for j, name := range fam {
			if name == r {
				return i, j <= 1, true
			}
		}
	}
	return 0, false, false
}

// x86WriteOnly lists the operations whose first operand is written and not
// read.
var x86WriteOnly = map[x86asm.Op]bool{
	x86asm.MOV: true, x86asm.MOVZX: true, x86asm.MOVSX: true, x86asm.MOVSXD: true,
	x86asm.LEA: true, x86asm.POP: true, x86asm.SETE: true, x86asm.SETNE: true,
	x86asm.RDTSC: true, x86asm.CPUID: true,
}

// X86LiveArgs reports, for each SysV argument register (rdi, rsi, rdx, rcx,
// r8, r9), whether the function starting at code may read it as an
// argument. It follows the entry block: a register written before it is
// read there is dead (the caller's leftover, not an argument); one read
// first is live. At a call or an unconditional jump, the argument
// registers are clobbered (caller-saved) or handed on, so the ones not yet
// decided take the target's answer from callee (nil when the target is
// unknown: they are taken as live); a transparent target (a profiling hook
// such as Linux's __fentry__, which saves and restores every argument) is
// walked past. A return makes the rest dead; a
// conditional branch or the end of the decoded code leaves them live.
func X86LiveArgs(code []byte, pc uint64, callee func(target uint64) (live []bool, transparent bool)) []bool {
	live := make([]bool, len(x86ArgFamilies))
	decided := make([]bool, len(x86ArgFamilies))
	decide := func(i int, v bool) {
		if !decided[i] {
			decided[i], live[i] = true, v
		}
	}
	read := func(a x86asm.Arg) {
		switch a := a.(type) {
		case x86asm.Reg:
			if i, _, ok := x86ArgIndex(a); ok {
				decide(i, true)
			}
		case x86asm.Mem:
			for _, r := range []x86asm.Reg{a.Base, a.Index} {
				if i, _, ok := x86ArgIndex(r); ok {
					decide(i, true)
				}
			}
		}
	}
	// handOn settles the undecided registers at a call or jump; it reports
	// false for a transparent target, where the walk goes on.
	handOn := func(inst x86asm.Inst, next uint64) bool {
		var target []bool
		if rel, ok := inst.Args[0].(x86asm.Rel); ok && callee != nil {
			var transparent bool
			target, transparent = callee(uint64(int64(next) + int64(rel)))
			if transparent {
				return false
			}
		} else if inst.Args[0] != nil {
			read(inst.Args[0]) // an indirect call reads its operand
		}
		for i := range live {
			decide(i, target == nil || i >= len(target) || target[i])
		}
		return true
	}
	for off, n := 0, 0; off < len(code) && n < 64; n++ {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Op == 0 {
			break
		}
		next := pc + uint64(off) + uint64(inst.Len)
		off += inst.Len
		switch inst.Op {
		case x86asm.CALL, x86asm.JMP:
			if handOn(inst, next) {
				return live
			}
			continue
		case x86asm.RET:
			for i := range live {
				decide(i, false)
			}
			return live
		case x86asm.JE, x86asm.JNE, x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE,
			x86asm.JG, x86asm.JGE, x86asm.JL, x86asm.JLE, x86asm.JS, x86asm.JNS, x86asm.JO, x86asm.JNO,
			x86asm.JP, x86asm.JNP, x86asm.JRCXZ, x86asm.JECXZ, x86asm.UD2, x86asm.INT, x86asm.HLT:
			for i := range live {
				decide(i, true)
			}
			return live
		}
		dst := inst.Args[0]
		if dst == nil {
			continue
		}
		// "xor %esi,%esi" reads nothing: it zeroes.
		zeroing := (inst.Op == x86asm.XOR || inst.Op == x86asm.SUB) && inst.Args[1] == dst
		if !zeroing {
			// Sources first: in "add %rsi,%rdi" rsi is read, rdi read and written.
			for j := 1; j < len(inst.Args) && inst.Args[j] != nil; j++ {
				read(inst.Args[j])
			}
		}
		if m, ok := dst.(x86asm.Mem); ok {
			read(m)
			continue
		}
		r, ok := dst.(x86asm.Reg)
		if !ok {
			continue
		}
		i, full, isArg := x86ArgIndex(r)
		if !isArg {
			continue
		}
		switch {
		case zeroing && full:
			decide(i, false)
		case x86WriteOnly[inst.Op] && full:
			decide(i, false)
		default:
			decide(i, true) // read-modify-write, compare, test, push, partial write
		}
	}
	for i := range live {
		decide(i, true)
	}
	return live
}
