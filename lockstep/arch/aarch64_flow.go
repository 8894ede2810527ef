package arch

import (
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
)

// a64ArgReg matches w0-w7 and x0-x7 as arm64asm prints them.
var a64ArgReg = regexp.MustCompile(`\b[WX]([0-7])\b`)

// a64Mask returns the argument registers (x0-x7) an operand names.
func a64Mask(a arm64asm.Arg) uint32 {
	if a == nil {
		return 0
	}
	var m uint32
	for _, sub := range a64ArgReg.FindAllStringSubmatch(a.String(), -1) {
		n, _ := strconv.Atoi(sub[1])
		m |= 1 << n
	}
	return m
}

// a64Dest returns the argument register an operand writes when it is one
// register, w or x (a w write zeroes the upper half: all of it is written).
func a64Dest(a arm64asm.Arg) uint32 {
	switch r := a.(type) {
	case arm64asm.Reg:
		if r >= arm64asm.W0 && r <= arm64asm.W7 {
			return 1 << (r - arm64asm.W0)
		}
		if r >= arm64asm.X0 && r <= arm64asm.X7 {
			return 1 << (r - arm64asm.X0)
		}
	case arm64asm.RegSP:
		return a64Dest(arm64asm.Reg(r))
	}
	return 0
}

// a64NoDest are the operations without a destination register: all their
// operands are read.
var a64NoDest = map[string]bool{
	"CMP": true, "CMN": true, "TST": true, "CCMP": true, "CCMN": true, "FCMP": true, "FCMPE": true,
	"FCCMP": true, "FCCMPE": true, "MSR": true, "PRFM": true, "PRFUM": true, "DC": true, "IC": true,
	"AT": true, "TLBI": true, "SYS": true, "HINT": true, "NOP": true, "YIELD": true, "WFE": true, "WFI": true,
	"SEV": true, "SEVL": true, "DMB": true, "DSB": true, "ISB": true, "CLREX": true,
}

// a64ReadWrite are the operations that read their destination too.
var a64ReadWrite = map[string]bool{
	"MOVK": true, "BFI": true, "BFXIL": true, "BFM": true, "BFC": true,
}

// a64Pair are the loads that write two registers.
var a64Pair = map[string]bool{
	"LDP": true, "LDNP": true, "LDPSW": true, "LDXP": true, "LDAXP": true,
}

// aarch64Decode decodes the four bytes at the start of code.
func aarch64Decode(code []byte) (arm64asm.Inst, bool) {
	if len(code) < 4 {
		return arm64asm.Inst{}, false
	}
	inst, err := arm64asm.Decode(code[:4])
	return inst, err == nil
}

// aarch64Flow classifies one A64 instruction for the liveness walk and
// FallThrough.
func aarch64Flow(code []byte, pc uint64) (flowInst, bool) {
	inst, ok := aarch64Decode(code)
	if !ok {
		return flowInst{}, false
	}
	f := flowInst{len: 4}
	op := inst.Op.String()
	args := inst.Args[:]
	for i, a := range args {
		if a == nil {
			args = args[:i]
			break
		}
	}
	readAll := func(from int) {
		for _, a := range args[min(from, len(args)):] {
			f.reads |= a64Mask(a)
		}
	}
	for _, a := range args {
		if rel, ok := a.(arm64asm.PCRel); ok {
			f.target = pc + uint64(int64(rel))
		}
	}
	switch {
	case op == "BL":
		f.kind = flowCall
	case op == "B":
		f.kind = flowJump
		if len(args) > 0 {
			if _, ok := args[0].(arm64asm.Cond); ok {
				f.kind = flowBranch
			}
		}
	case op == "CBZ" || op == "CBNZ" || op == "TBZ" || op == "TBNZ":
		readAll(0)
		f.kind = flowBranch
	case op == "RET" || strings.HasPrefix(op, "RETA"):
		f.kind = flowReturn
	case op == "BR" || op == "BLR" || strings.HasPrefix(op, "BRA") || strings.HasPrefix(op, "BLRA"):
		readAll(0)
		f.kind = flowIndirect
	case strings.HasPrefix(op, "ERET") || op == "BRK" || op == "HLT" || op == "UDF" || op == "DRPS":
		f.kind = flowStop
	case op == "SVC" || op == "HVC" || op == "SMC":
		f.kind = flowSyscall
	case strings.HasPrefix(op, "ST") && strings.Contains(op, "XR") || op == "STXP" || op == "STLXP":
		// Store exclusive: the first operand receives the status.
		readAll(1)
		f.writes = a64Dest(args[0]) &^ f.reads
	case op == "NOP":
		f.nop = true
	case strings.HasPrefix(op, "ST") || a64NoDest[op] || strings.HasPrefix(op, "CAS") || len(args) == 0:
		readAll(0)
	case strings.HasPrefix(op, "SWP") || strings.HasPrefix(op, "LDADD") || strings.HasPrefix(op, "LDCLR") ||
		strings.HasPrefix(op, "LDEOR") || strings.HasPrefix(op, "LDSET") || strings.HasPrefix(op, "LDSMAX") ||
		strings.HasPrefix(op, "LDSMIN") || strings.HasPrefix(op, "LDUMAX") || strings.HasPrefix(op, "LDUMIN"):
		// Atomics: the first operand is read, the second receives the old value.
		f.reads = a64Mask(args[0])
		if len(args) > 2 {
			f.reads |= a64Mask(args[2])
		}
		if len(args) > 1 {
			f.writes = a64Dest(args[1]) &^ f.reads
		}
	case a64Pair[op] && len(args) >= 3:
		readAll(2)
		f.writes = (a64Dest(args[0]) | a64Dest(args[1])) &^ f.reads
	case a64ReadWrite[op]:
		readAll(0)
	default:
		readAll(1)
		// "eor x0, x0, x0" and "sub x0, x0, x0" zero: they read nothing.
		if (op == "EOR" || op == "SUB") && len(args) == 3 && args[1] == args[2] {
			f.reads = 0
		}
		if a64Dest(args[0]) == 0 {
			f.reads |= a64Mask(args[0]) // a vector lane insert, a partial write
		}
		f.writes = a64Dest(args[0]) &^ f.reads
	}
	return f, true
}

// aarch64FallThrough returns the address after the instruction at pc when
// it always continues there.
func aarch64FallThrough(code []byte, pc uint64) (uint64, bool) {
	f, ok := aarch64Flow(code, pc)
	if !ok || f.kind != flowNext {
		return 0, false
	}
	return pc + 4, true
}
