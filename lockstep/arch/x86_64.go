package arch

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// x86Flags are the named bits of EFLAGS/RFLAGS.
var x86Flags = []Bit{
	{"CF", 0, 1}, {"PF", 2, 1}, {"AF", 4, 1}, {"ZF", 6, 1}, {"SF", 7, 1},
	{"TF", 8, 1}, {"IF", 9, 1}, {"DF", 10, 1}, {"OF", 11, 1}, {"IOPL", 12, 2},
	{"NT", 14, 1}, {"RF", 16, 1}, {"VM", 17, 1}, {"AC", 18, 1}, {"VIF", 19, 1},
	{"VIP", 20, 1}, {"ID", 21, 1},
}

// x86MXCSR are the named fields of the SSE control/status register.
var x86MXCSR = []Bit{
	{"IE", 0, 1}, {"DE", 1, 1}, {"ZE", 2, 1}, {"OE", 3, 1}, {"UE", 4, 1},
	{"PE", 5, 1}, {"DAZ", 6, 1}, {"IM", 7, 1}, {"DM", 8, 1}, {"ZM", 9, 1},
	{"OM", 10, 1}, {"UM", 11, 1}, {"PM", 12, 1}, {"RC", 13, 2}, {"FZ", 15, 1},
}

func init() {
	register(&Arch{
		Name:         "x86_64",
		PC:           "rip",
		SP:           "rsp",
		FP:           "rbp",
		PtrSize:      8,
		ArgRegs:      []string{"rdi", "rsi", "rdx", "rcx", "r8", "r9"},
		EntryScratch: []string{"rax", "rbx", "rbp", "r10", "r11", "r12", "r13", "r14", "r15"},
		RetRegs:      []string{"rax"}, // rdx too for 128-bit values: name it to compare it
		StackAlign:   16,
		StatusFlags:  map[string][]string{"eflags": {"CF", "PF", "AF", "ZF", "SF", "OF"}},
		Flags:        map[string][]Bit{"eflags": x86Flags, "rflags": x86Flags, "mxcsr": x86MXCSR},
		Disasm: func(code []byte, pc uint64, sym func(uint64) string) (string, int, error) {
			return DisasmX86(code, pc, 64, sym)
		},
		CallBefore: func(code []byte) bool { return x86CallBefore(code, 64) },
		MaxCallLen: 15,
		LiveArgs:   X86LiveArgs,
		// The return address sits above the saved rbp.
		FrameRecord: &FrameLayout{PrevFP: 0, RetAddr: 8},
		BreakKind:   1,
		FallThrough: func(code []byte, pc uint64) (uint64, bool) {
			return X86FallThrough(code, pc, 64)
		},
		// System V AMD64 psABI, figure 3.36.
		DWARFRegs: []string{"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
			"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"},
	}, "i386:x86-64", "x86-64", "amd64", "x86_64-softmmu")
	register(&Arch{
		Name:    "i386",
		PC:      "eip",
		SP:      "esp",
		FP:      "ebp",
		PtrSize: 4,
		Flags:   map[string][]Bit{"eflags": x86Flags, "mxcsr": x86MXCSR},
		Disasm: func(code []byte, pc uint64, sym func(uint64) string) (string, int, error) {
			return DisasmX86(code, pc, 32, sym)
		},
		CallBefore:  func(code []byte) bool { return x86CallBefore(code, 32) },
		FrameRecord: &FrameLayout{PrevFP: 0, RetAddr: 4},
		BreakKind:   1,
		MaxCallLen:  15,
		FallThrough: func(code []byte, pc uint64) (uint64, bool) {
			return X86FallThrough(code, pc, 32)
		},
		// i386 psABI: eax ecx edx ebx esp ebp esi edi, then the return address.
		DWARFRegs: []string{"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip"},
	}, "i386:intel", "x86", "386")
}

// DisasmX86 disassembles one x86 instruction in GNU (AT&T) syntax for the
// given mode (16, 32 or 64 bits). Use mode 32 for code that runs before the
// guest enters long mode (e.g. a PVH or multiboot entry). Branch targets
// and RIP-relative operands are annotated "<sym>" when sym names them.
func DisasmX86(code []byte, pc uint64, mode int, sym func(uint64) string) (string, int, error) {
	if text, n, ok := x86Special(code); ok {
		return text, n, nil
	}
	inst, err := x86asm.Decode(code, mode)
	if err != nil {
		return "", 0, fmt.Errorf("x86 at %#x: %w: %w", pc, ErrDecode, err)
	}
	if inst.Op == 0 {
		// x86asm reports a lone prefix for truncated or unknown
		// encodings; its length would be a lie.
		return "", 0, fmt.Errorf("x86 at %#x: %w: % x", pc, ErrDecode, code[:min(len(code), 15)])
	}
	text := x86asm.GNUSyntax(inst, pc, nil)
	if sym == nil {
		return text, inst.Len, nil
	}
	next := pc + uint64(inst.Len)
	for _, a := range inst.Args {
		if a == nil {
			break
		}
		var target uint64
		switch a := a.(type) {
		case x86asm.Rel:
			target = next + uint64(int64(a))
		case x86asm.Mem:
			if a.Base != x86asm.RIP || a.Index != 0 {
				continue
			}
			target = next + uint64(a.Disp)
			if mode != 64 {
				continue
			}
		default:
			continue
		}
		if s := sym(target); s != "" && s != fmt.Sprintf("%#x", target) {
			if _, ok := a.(x86asm.Mem); ok {
				text += fmt.Sprintf("  # %#x <%s>", target, s)
			} else {
				text += " <" + s + ">"
			}
		}
		break
	}
	return text, inst.Len, nil
}

// x86Special decodes the few instructions x86asm does not know that are
// common in kernels built with CET/IBT.
func x86Special(code []byte) (string, int, bool) {
	if len(code) >= 4 && code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e {
		switch code[3] {
		case 0xfa:
			return "endbr64", 4, true
		case 0xfb:
			return "endbr32", 4, true
		}
	}
	return "", 0, false
}

// x86CallBefore reports whether code ends with a complete CALL instruction
// (E8 rel32 or FF /2 in any addressing form, with prefixes), i.e. whether
// the address just after code is plausibly a return address.
func x86CallBefore(code []byte, mode int) bool {
	n := len(code)
	// Fast path: direct near call, the common case.
	if n >= 5 && code[n-5] == 0xe8 {
		if inst, err := x86asm.Decode(code[n-5:], mode); err == nil && inst.Len == 5 && inst.Op == x86asm.CALL {
			return true
		}
	}
	for l := 2; l <= 15 && l <= n; l++ {
		c := code[n-l:]
		// An FF /2 call has its opcode within the first few bytes
		// (after legacy/REX prefixes); skip windows that cannot hold one.
		if !hasCallOpcode(c) {
			continue
		}
		inst, err := x86asm.Decode(c, mode)
		if err != nil || inst.Len != l {
			continue
		}
		if inst.Op == x86asm.CALL || inst.Op == x86asm.LCALL {
			return true
		}
	}
	return false
}

// hasCallOpcode reports whether a call opcode (E8, FF, 9A) appears within
// the first five bytes of c, where it must be after at most four prefixes.
func hasCallOpcode(c []byte) bool {
	for i := 0; i < len(c) && i < 5; i++ {
		switch c[i] {
		case 0xe8, 0xff, 0x9a:
			return true
		}
	}
	return false
}

// x86Transfers are the operations after which the next instruction is not
// necessarily the one that follows in memory.
var x86Transfers = map[x86asm.Op]bool{
	x86asm.JMP: true, x86asm.LJMP: true, x86asm.CALL: true, x86asm.LCALL: true,
	x86asm.RET: true, x86asm.LRET: true, x86asm.IRET: true, x86asm.IRETD: true, x86asm.IRETQ: true,
	x86asm.INT: true, x86asm.INTO: true, x86asm.SYSCALL: true, x86asm.SYSENTER: true,
	x86asm.SYSEXIT: true, x86asm.SYSRET: true, x86asm.UD1: true, x86asm.UD2: true, x86asm.HLT: true,
	x86asm.LOOP: true, x86asm.LOOPE: true, x86asm.LOOPNE: true,
	x86asm.JCXZ: true, x86asm.JECXZ: true, x86asm.JRCXZ: true,
	x86asm.JA: true, x86asm.JAE: true, x86asm.JB: true, x86asm.JBE: true, x86asm.JE: true,
	x86asm.JG: true, x86asm.JGE: true, x86asm.JL: true, x86asm.JLE: true, x86asm.JNE: true,
	x86asm.JNO: true, x86asm.JNP: true, x86asm.JNS: true, x86asm.JO: true, x86asm.JP: true, x86asm.JS: true,
}

// X86FallThrough returns the address of the instruction after the one at
// pc when that one always continues there (no jump, call, return,
// interrupt or halt), for the given mode.
func X86FallThrough(code []byte, pc uint64, mode int) (uint64, bool) {
	if _, n, ok := x86Special(code); ok {
		return pc + uint64(n), true // endbr
	}
	inst, err := x86asm.Decode(code, mode)
	if err != nil || inst.Op == 0 || x86Transfers[inst.Op] {
		return 0, false
	}
	return pc + uint64(inst.Len), true
}
