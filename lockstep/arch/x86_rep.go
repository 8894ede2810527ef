package arch

import "golang.org/x/arch/x86/x86asm"

// x86StringOps are the string instructions a REP/REPE/REPNE prefix
// repeats.
var x86StringOps = map[x86asm.Op]bool{
	x86asm.MOVSB: true, x86asm.MOVSW: true, x86asm.MOVSD: true, x86asm.MOVSQ: true,
	x86asm.STOSB: true, x86asm.STOSW: true, x86asm.STOSD: true, x86asm.STOSQ: true,
	x86asm.LODSB: true, x86asm.LODSW: true, x86asm.LODSD: true, x86asm.LODSQ: true,
	x86asm.CMPSB: true, x86asm.CMPSW: true, x86asm.CMPSD: true, x86asm.CMPSQ: true,
	x86asm.SCASB: true, x86asm.SCASW: true, x86asm.SCASD: true, x86asm.SCASQ: true,
	x86asm.INSB: true, x86asm.INSW: true, x86asm.INSD: true,
	x86asm.OUTSB: true, x86asm.OUTSW: true, x86asm.OUTSD: true,
}

// X86RepString reports whether code starts with a REP-, REPE- or
// REPNE-prefixed string instruction (movs, stos, lods, cmps, scas, ins,
// outs) in mode (16, 32 or 64). Such an instruction runs one iteration
// per count, and QEMU versions differ in how a single step or a CPU log
// entry covers them: 7.2 logs and steps one iteration at a time and
// leaves rip after the instruction on the step that takes the count to 0;
// 10.0 logs it once and needs one more step after the count reaches 0.
// Comparisons count it as one instruction, at its retirement.
func X86RepString(code []byte, mode int) bool {
	if mode == 0 {
		mode = 64
	}
	inst, err := x86asm.Decode(code, mode)
	if err != nil || !x86StringOps[inst.Op] {
		return false
	}
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		switch p &^ (x86asm.PrefixImplicit | x86asm.PrefixIgnored | x86asm.PrefixInvalid) {
		case x86asm.PrefixREP, x86asm.PrefixREPN:
			return p&(x86asm.PrefixIgnored|x86asm.PrefixInvalid) == 0
		}
	}
	return false
}
