package arch

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/arch/riscv64/riscv64asm"
)

// riscvABI are the psABI names of x0-x31, as QEMU's target.xml and objdump
// spell them (objdump says s0 where target.xml says fp).
var riscvABI = [32]string{
	"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
	"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
	"s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
	"t3", "t4", "t5", "t6",
}

// riscvFABI are the psABI names of f0-f31.
var riscvFABI = [32]string{
	"ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1",
	"fa0", "fa1", "fa2", "fa3", "fa4", "fa5", "fa6", "fa7",
	"fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
	"ft8", "ft9", "ft10", "ft11",
}

func init() {
	dw := make([]string, 32)
	copy(dw, riscvABI[:])
	dw[8] = "fp" // target.xml's name for s0
	register(&Arch{
		Name:    "riscv64",
		PC:      "pc",
		SP:      "sp",
		FP:      "fp",
		Link:    "ra",
		PtrSize: 8,
		ArgRegs: []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"},
		RetRegs: []string{"a0"}, // a1 too for 128-bit values
		// Temporaries, callee-saved registers and the return address
		// (an address in the caller's code, which moves between builds).
		EntryScratch: []string{"ra", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "fp", "s1",
			"s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"},
		StackAlign:  16,
		Disasm:      disasmRISCV64,
		CallBefore:  riscvCallBefore,
		MaxCallLen:  4,
		FallThrough: riscvFallThrough,
		LiveArgs: func(code []byte, pc uint64, callee func(uint64) ([]bool, bool)) []bool {
			return liveArgs(8, 0, riscvFlow, code, pc, callee)
		},
		// RISC-V ELF psABI: x0-x31 are 0-31; GCC's return-address column is ra (1).
		DWARFRegs:   dw,
		WatchBefore: true,
		// GCC's frame pointer points just above the saved ra and fp.
		FrameRecord: &FrameLayout{PrevFP: -16, RetAddr: -8},
		// gdb sends kind 2 at a compressed instruction; TCG ignores the kind.
		BreakKind: 4,
	}, "riscv:rv64", "riscv")
}

// riscvRegName matches the register names riscv64asm prints.
var riscvRegName = regexp.MustCompile(`\b([xf])([0-9]+)\b`)

// riscvABINames rewrites x10 to a0 and f10 to fa0.
func riscvABINames(s string) string {
	return riscvRegName.ReplaceAllStringFunc(s, func(m string) string {
		n, err := strconv.Atoi(m[1:])
		if err != nil || n > 31 {
			return m
		}
		if m[0] == 'x' {
			return riscvABI[n]
		}
		return riscvFABI[n]
	})
}

// decodeRISCV64 decodes one instruction, guarding the decoder against
// panics on odd encodings.
func decodeRISCV64(code []byte) (inst riscv64asm.Inst, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	inst, err = riscv64asm.Decode(code)
	if err == nil && (inst.Len != 2 && inst.Len != 4 || inst.Len > len(code)) {
		err = fmt.Errorf("bad length %d", inst.Len)
	}
	return inst, err
}

// riscvPCRel returns the target of a jal or conditional branch.
func riscvPCRel(inst riscv64asm.Inst, pc uint64) (uint64, bool) {
	switch inst.Op {
	case riscv64asm.JAL, riscv64asm.BEQ, riscv64asm.BNE, riscv64asm.BLT, riscv64asm.BGE,
		riscv64asm.BLTU, riscv64asm.BGEU:
	default:
		return 0, false
	}
	for i := len(inst.Args) - 1; i >= 0; i-- {
		if s, ok := inst.Args[i].(riscv64asm.Simm); ok {
			return pc + uint64(int64(s.Imm)), true
		}
	}
	return 0, false
}

// disasmRISCV64 disassembles one RV64GC instruction in GNU syntax with
// ABI register names, branch targets as absolute addresses annotated with
// sym.
func disasmRISCV64(code []byte, pc uint64, sym func(uint64) string) (text string, n int, err error) {
	if s, ok := riscvSpecial(code); ok {
		if code[0]&3 != 3 {
			return s, 2, nil
		}
		return s, 4, nil
	}
	inst, err := decodeRISCV64(code)
	if err != nil {
		return "", 0, fmt.Errorf("riscv64 at %#x: %w: %w", pc, ErrDecode, err)
	}
	defer func() {
		if r := recover(); r != nil {
			text, n, err = "", 0, fmt.Errorf("riscv64 at %#x: %w: printer panic: %v", pc, ErrDecode, r)
		}
	}()
	text = riscvABINames(riscv64asm.GNUSyntax(inst))
	if target, ok := riscvPCRel(inst, pc); ok {
		// GNUSyntax prints the offset as the last operand: print the target.
		if i := strings.LastIndexAny(text, ", "); i >= 0 {
			text = text[:i+1] + fmt.Sprintf("%#x", target)
		}
		if sym != nil {
			if s := sym(target); s != "" && s != fmt.Sprintf("%#x", target) {
				text += " <" + s + ">"
			}
		}
	}
	return text, inst.Len, nil
}

// riscvCallBefore reports whether code ends with a call: a jal or jalr
// that links (rd not zero), or a compressed c.jalr (RV64 has no c.jal).
func riscvCallBefore(code []byte) bool {
	n := len(code)
	if n >= 4 && code[n-4]&3 == 3 {
		w := binary.LittleEndian.Uint32(code[n-4:])
		rd := (w >> 7) & 31
		switch {
		case w&0x7f == 0x6f && rd != 0: // jal rd, imm
			return true
		case w&0x707f == 0x67 && rd != 0: // jalr rd, imm(rs1)
			return true
		}
	}
	if n >= 2 {
		h := binary.LittleEndian.Uint16(code[n-2:])
		// c.jalr rs1: funct4 1001, rs1 != 0, rs2 = 0, op 10.
		if h&0xf07f == 0x9002 && (h>>7)&31 != 0 {
			return true
		}
	}
	return false
}

// riscvTransfers are the operations after which execution does not
// necessarily continue with the next instruction.
var riscvTransfers = map[riscv64asm.Op]bool{
	riscv64asm.JAL: true, riscv64asm.JALR: true, riscv64asm.BEQ: true, riscv64asm.BNE: true,
	riscv64asm.BLT: true, riscv64asm.BGE: true, riscv64asm.BLTU: true, riscv64asm.BGEU: true,
	riscv64asm.ECALL: true, riscv64asm.EBREAK: true,
}

// riscvPrivileged are the privileged instructions riscv64asm does not
// know, by their fixed encoding.
var riscvPrivileged = map[uint32]string{
	0x30200073: "mret", 0x10200073: "sret", 0x10500073: "wfi", 0x7b200073: "dret",
}

// riscvSpecial decodes the privileged instructions riscv64asm lacks
// (mret, sret, wfi, dret, sfence.vma) and the two unimp encodings it
// decodes as ordinary ones.
func riscvSpecial(code []byte) (string, bool) {
	if len(code) >= 2 && code[0] == 0 && code[1] == 0 {
		return "unimp", true // c.unimp: all-zero, illegal
	}
	if len(code) < 4 || code[0]&3 != 3 {
		return "", false
	}
	w := binary.LittleEndian.Uint32(code)
	if w == 0xc0001073 {
		return "unimp", true // csrrw zero,cycle,zero: cycle is read-only
	}
	if s, ok := riscvPrivileged[w]; ok {
		return s, true
	}
	if w&0xfe007fff == 0x12000073 { // sfence.vma rs1, rs2
		rs1, rs2 := (w>>15)&31, (w>>20)&31
		switch {
		case rs2 != 0:
			return fmt.Sprintf("sfence.vma %s,%s", riscvABI[rs1], riscvABI[rs2]), true
		case rs1 != 0:
			return "sfence.vma " + riscvABI[rs1], true
		}
		return "sfence.vma", true
	}
	return "", false
}

// riscvFallThrough returns the address after the instruction at pc when it
// always continues there.
func riscvFallThrough(code []byte, pc uint64) (uint64, bool) {
	if s, ok := riscvSpecial(code); ok {
		if s == "mret" || s == "sret" || s == "dret" || s == "wfi" || s == "unimp" {
			return 0, false
		}
		return pc + 4, true
	}
	inst, err := decodeRISCV64(code)
	if err != nil || riscvTransfers[inst.Op] {
		return 0, false
	}
	return pc + uint64(inst.Len), true
}

// riscvStores are the operations whose first operand is a source.
var riscvStores = map[riscv64asm.Op]bool{
	riscv64asm.SB: true, riscv64asm.SH: true, riscv64asm.SW: true, riscv64asm.SD: true,
	riscv64asm.FSW: true, riscv64asm.FSD: true, riscv64asm.FSQ: true, riscv64asm.FSH: true,
}

// riscvArgMask returns the argument registers (a0-a7 = x10-x17) named in s.
func riscvArgMask(s string) uint32 {
	var m uint32
	for _, sub := range riscvRegName.FindAllStringSubmatch(s, -1) {
		if sub[1] != "x" {
			continue
		}
		if n, err := strconv.Atoi(sub[2]); err == nil && n >= 10 && n <= 17 {
			m |= 1 << (n - 10)
		}
	}
	return m
}

// riscvFlow classifies one instruction for the liveness walk.
func riscvFlow(code []byte, pc uint64) (flowInst, bool) {
	if s, ok := riscvSpecial(code); ok {
		n := 4
		if code[0]&3 != 3 {
			n = 2
		}
		if s == "wfi" || strings.HasPrefix(s, "sfence") {
			return flowInst{len: n}, true
		}
		return flowInst{len: n, kind: flowStop}, true
	}
	inst, err := decodeRISCV64(code)
	if err != nil {
		return flowInst{}, false
	}
	f := flowInst{len: inst.Len}
	var srcs []riscv64asm.Arg
	var dst riscv64asm.Reg
	hasDst := false
	switch {
	case riscvStores[inst.Op]:
		srcs = inst.Args[:]
	case inst.Op == riscv64asm.BEQ || inst.Op == riscv64asm.BNE || inst.Op == riscv64asm.BLT ||
		inst.Op == riscv64asm.BGE || inst.Op == riscv64asm.BLTU || inst.Op == riscv64asm.BGEU:
		srcs = inst.Args[:]
		f.kind = flowBranch
		f.target, _ = riscvPCRel(inst, pc)
	default:
		if r, ok := inst.Args[0].(riscv64asm.Reg); ok && r <= riscv64asm.X31 {
			dst, hasDst = r, true
			srcs = inst.Args[1:]
		} else {
			srcs = inst.Args[:]
		}
	}
	for _, a := range srcs {
		if a == nil {
			break
		}
		if _, ok := a.(riscv64asm.Simm); ok {
			continue
		}
		f.reads |= riscvArgMask(a.String())
	}
	// "xor a0,a0,a0" and "sub a0,a0,a0" read nothing: they zero.
	if (inst.Op == riscv64asm.XOR || inst.Op == riscv64asm.SUB || inst.Op == riscv64asm.SUBW) &&
		inst.Args[1] == inst.Args[2] {
		f.reads = 0
	}
	switch inst.Op {
	case riscv64asm.JAL:
		f.target, _ = riscvPCRel(inst, pc)
		f.kind = flowJump
		if dst != riscv64asm.X0 {
			f.kind = flowCall
		}
	case riscv64asm.JALR:
		f.kind = flowIndirect
		if ro, ok := inst.Args[1].(riscv64asm.RegOffset); ok && dst == riscv64asm.X0 &&
			ro.OfsReg == riscv64asm.X1 && ro.Ofs.Imm == 0 {
			f.kind = flowReturn
		}
	case riscv64asm.ECALL:
		f.kind = flowSyscall
	case riscv64asm.ADDI:
		f.nop = inst.Args[0] == riscv64asm.X0 // nop, c.nop
	case riscv64asm.EBREAK:
		f.kind = flowStop
	}
	// Every write of an integer register writes all 64 bits (the W forms
	// sign-extend), so it kills an argument the instruction did not read.
	if hasDst && dst >= riscv64asm.X10 && dst <= riscv64asm.X17 && f.kind != flowCall {
		f.writes = 1 << (dst - riscv64asm.X10)
	}
	return f, true
}
