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

// x86Branches are the conditional branches: both ways are followed.
var x86Branches = map[x86asm.Op]bool{
	x86asm.JE: true, x86asm.JNE: true, x86asm.JA: true, x86asm.JAE: true, x86asm.JB: true, x86asm.JBE: true,
	x86asm.JG: true, x86asm.JGE: true, x86asm.JL: true, x86asm.JLE: true, x86asm.JS: true, x86asm.JNS: true,
	x86asm.JO: true, x86asm.JNO: true, x86asm.JP: true, x86asm.JNP: true,
	x86asm.JRCXZ: true, x86asm.JECXZ: true, x86asm.JCXZ: true,
	x86asm.LOOP: true, x86asm.LOOPE: true, x86asm.LOOPNE: true,
}

// x86LiveBudget bounds the instructions X86LiveArgs decodes along all
// paths of one function.
const x86LiveBudget = 4096

// X86LiveArgs reports, for each SysV argument register (rdi, rsi, rdx, rcx,
// r8, r9), whether the function starting at code may read it as an
// argument: whether some path from the entry reads it before writing it.
// It follows every path through the function's code: both ways at a
// conditional branch, jumps inside code, loops once. A register written
// before it is read on a path is dead there (the caller's leftover, not an
// argument). At a call or a jump out of code (a tail call) the argument
// registers not yet decided on that path take the target's answer from
// callee (nil when the target is unknown: they are taken as live); a
// transparent target (a profiling hook such as Linux's __fentry__, which
// saves and restores every argument) is walked past. A return ends a path
// with the rest dead. An indirect jump, an interrupt, undecodable bytes,
// running off the end of code or the budget leave the rest live.
func X86LiveArgs(code []byte, pc uint64, callee func(target uint64) (live []bool, transparent bool)) []bool {
	n := len(x86ArgFamilies)
	all := uint8(1)<<n - 1
	live := make([]bool, n)
	budget := x86LiveBudget
	type state struct {
		off     int
		decided uint8
	}
	seen := map[state]bool{}
	rest := func(decided uint8, v []bool) {
		for i := range n {
			if decided&(1<<i) == 0 && (v == nil || i >= len(v) || v[i]) {
				live[i] = true
			}
		}
	}
	var walk func(off int, decided uint8)
	walk = func(off int, decided uint8) {
		read := func(a x86asm.Arg) {
			var regs []x86asm.Reg
			switch a := a.(type) {
			case x86asm.Reg:
				regs = []x86asm.Reg{a}
			case x86asm.Mem:
				regs = []x86asm.Reg{a.Base, a.Index}
			}
			for _, r := range regs {
				if i, _, ok := x86ArgIndex(r); ok && decided&(1<<i) == 0 {
					live[i] = true
					decided |= 1 << i
				}
			}
		}
		for decided != all {
			if off < 0 || off >= len(code) || budget <= 0 {
				rest(decided, nil)
				return
			}
			if seen[state{off, decided}] {
				return // this path was followed from here already
			}
			seen[state{off, decided}] = true
			budget--
			inst, err := x86asm.Decode(code[off:], 64)
			if err != nil || inst.Op == 0 {
				rest(decided, nil)
				return
			}
			next := pc + uint64(off) + uint64(inst.Len)
			off += inst.Len
			target, direct := uint64(0), false
			if rel, ok := inst.Args[0].(x86asm.Rel); ok {
				target, direct = uint64(int64(next)+int64(rel)), true
			}
			inCode := direct && target >= pc && target < pc+uint64(len(code))
			switch {
			case inst.Op == x86asm.RET:
				return
			case inst.Op == x86asm.UD2 || inst.Op == x86asm.HLT:
				return
			case inst.Op == x86asm.INT:
				rest(decided, nil)
				return
			case inst.Op == x86asm.JMP && inCode:
				off = int(target - pc)
				continue
			case inst.Op == x86asm.CALL || inst.Op == x86asm.JMP:
				if !direct {
					read(inst.Args[0]) // an indirect call or jump reads its operand
					rest(decided, nil)
					return
				}
				var v []bool
				if callee != nil {
					var transparent bool
					if v, transparent = callee(target); transparent {
						continue
					}
				}
				rest(decided, v)
				return
			case x86Branches[inst.Op]:
				if inst.Op == x86asm.JRCXZ || inst.Op == x86asm.JECXZ || inst.Op == x86asm.JCXZ || inst.Op == x86asm.LOOP ||
					inst.Op == x86asm.LOOPE || inst.Op == x86asm.LOOPNE {
					read(x86asm.RCX)
				}
				if inCode {
					walk(int(target-pc), decided)
				} else {
					rest(decided, nil)
				}
				continue
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
			if !isArg || decided&(1<<i) != 0 {
				continue
			}
			if (zeroing || x86WriteOnly[inst.Op]) && full {
				decided |= 1 << i // written first: dead on this path
			} else {
				live[i] = true // read-modify-write, compare, test, push, partial write
				decided |= 1 << i
			}
		}
	}
	walk(0, 0)
	return live
}
