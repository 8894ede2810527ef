package arch

import (
	"fmt"
	"strings"

	"golang.org/x/arch/s390x/s390xasm"
)

// s390xPSWMask are the named fields of the PSW mask (pswm) as the gdbstub
// shows it: the 64 high bits of the PSW, IBM bit 0 the most significant.
var s390xPSWMask = []Bit{
	{"EA", 32, 1}, {"BA", 31, 1}, // addressing mode (IBM bits 31, 32)
	{"PM", 40, 4},                            // program mask (IBM 20-23)
	{"CC", 44, 2},                            // condition code (IBM 18-19)
	{"AS", 46, 2},                            // address-space control (IBM 16-17)
	{"P", 48, 1}, {"W", 49, 1}, {"M", 50, 1}, // problem state, wait, machine check
	{"KEY", 52, 4},                                          // PSW key (IBM 8-11)
	{"E", 56, 1}, {"IO", 57, 1}, {"T", 58, 1}, {"R", 62, 1}, // external, I/O, DAT, PER
}

func init() {
	dw := make([]string, 66)
	for i := range 16 {
		dw[i] = fmt.Sprintf("r%d", i)
		dw[48+i] = fmt.Sprintf("acr%d", i)
	}
	// DWARF 16-31 are the FPRs in the order f0 f2 f4 f6 f1 f3 f5 f7 f8 f10 ...
	for i, f := range []int{0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15} {
		dw[16+i] = fmt.Sprintf("f%d", f)
	}
	dw[64], dw[65] = "pswm", "pswa"
	register(&Arch{
		Name:      "s390x",
		PC:        "pswa",
		SP:        "r15",
		FP:        "r11", // GCC's frame pointer; there is no frame-pointer chain
		Link:      "r14",
		PtrSize:   8,
		BigEndian: true,
		ArgRegs:   []string{"r2", "r3", "r4", "r5", "r6"},
		RetRegs:   []string{"r2"},
		// Volatile r0, r1; callee-saved r7-r13 (r6 is both an argument and
		// callee-saved); r14 the return address.
		EntryScratch: []string{"r0", "r1", "r7", "r8", "r9", "r10", "r11", "r12", "r13", "r14"},
		StackAlign:   8,
		Flags:        map[string][]Bit{"pswm": s390xPSWMask},
		StatusFlags:  map[string][]string{"pswm": {"CC"}},
		Disasm:       disasmS390X,
		CallBefore:   s390xCallBefore,
		MaxCallLen:   6,
		FallThrough: func(code []byte, pc uint64) (uint64, bool) {
			f, ok := s390xFlow(code, pc)
			if !ok || f.kind != flowNext {
				return 0, false
			}
			return pc + uint64(f.len), true
		},
		LiveArgs: func(code []byte, pc uint64, callee func(uint64) ([]bool, bool)) []bool {
			return liveArgs(5, 1<<4, s390xFlow, code, pc, callee) // r6 survives calls
		},
		// s390x ELF ABI supplement; GCC's return-address column is r14.
		DWARFRegs:   dw,
		WatchBefore: false,
		BreakKind:   2,
		// With -mbackchain, 0(%r15) holds the caller's r15, and the caller's
		// register save area holds r14 at 112 from the caller's r15.
		BackChain: &FrameLayout{PrevFP: 0, RetAddr: 112},
	}, "s390:64-bit", "s390", "s390x-softmmu")
}

// s390xLen is the instruction length its first two bits give.
func s390xLen(b byte) int {
	switch b >> 6 {
	case 0:
		return 2
	case 3:
		return 6
	}
	return 4
}

// decodeS390X decodes one instruction, guarding the decoder (which slices
// past short input and indexes past its operand list on odd encodings).
func decodeS390X(code []byte) (inst s390xasm.Inst, err error) {
	if len(code) < 2 || len(code) < s390xLen(code[0]) {
		return inst, fmt.Errorf("%d bytes", len(code))
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	inst, err = s390xasm.Decode(code)
	if err == nil && (inst.Op == 0 || inst.Len != s390xLen(code[0])) {
		err = fmt.Errorf("unknown instruction % x", code[:s390xLen(code[0])])
	}
	return inst, err
}

// s390xRel returns the target of the relative-branch operand of inst, if
// it has one.
func s390xRel(inst s390xasm.Inst, pc uint64) (uint64, bool) {
	for _, a := range inst.Args {
		switch r := a.(type) {
		case s390xasm.RegIm12:
			return pc + 2*uint64(int64(int16(uint16(r)<<4)>>4)), true
		case s390xasm.RegIm16:
			return pc + 2*uint64(int64(int16(r))), true
		case s390xasm.RegIm24:
			return pc + 2*uint64(int64(int32(uint32(r)<<8)>>8)), true
		case s390xasm.RegIm32:
			return pc + 2*uint64(int64(int32(r))), true
		}
	}
	return 0, false
}

// disasmS390X disassembles one z/Architecture instruction in GNU syntax,
// annotating relative branch and load-address targets.
func disasmS390X(code []byte, pc uint64, sym func(uint64) string) (text string, n int, err error) {
	inst, err := decodeS390X(code)
	if err != nil {
		return "", 0, fmt.Errorf("s390x at %#x: %w: %w", pc, ErrDecode, err)
	}
	defer func() {
		if r := recover(); r != nil {
			text, n, err = "", 0, fmt.Errorf("s390x at %#x: %w: printer panic: %v", pc, ErrDecode, r)
		}
	}()
	text = s390xasm.GNUSyntax(inst, pc)
	if target, ok := s390xRel(inst, pc); ok && sym != nil {
		if s := sym(target); s != "" && s != fmt.Sprintf("%#x", target) {
			text += " <" + s + ">"
		}
	}
	return text, inst.Len, nil
}

// s390xCallBefore reports whether code ends with a call: brasl (6 bytes),
// bras or bas (4), basr or bassm with a target register (2).
func s390xCallBefore(code []byte) bool {
	n := len(code)
	if n >= 6 && code[n-6] == 0xc0 && code[n-5]&0x0f == 0x05 { // brasl
		return true
	}
	if n >= 4 && (code[n-4] == 0xa7 && code[n-3]&0x0f == 0x05 || code[n-4] == 0x4d) { // bras, bas
		return true
	}
	if n >= 2 && (code[n-2] == 0x0d || code[n-2] == 0x0c) && code[n-1]&0x0f != 0 { // basr, bassm
		return true
	}
	return false
}

// s390xFullWrite are the loads that write all 64 bits of their first
// operand without reading it (the 32-bit forms leave the high half).
var s390xFullWrite = map[string]bool{
	"lgr": true, "lg": true, "lgf": true, "lgfr": true, "lgh": true, "lghr": true, "lgb": true, "lgbr": true,
	"llgf": true, "llgfr": true, "llgh": true, "llghr": true, "llgc": true, "llgcr": true, "llgt": true, "llgtr": true,
	"lghi": true, "lgfi": true, "llilf": true, "llihf": true, "llill": true, "llilh": true, "llihl": true, "llihh": true,
	"la": true, "lay": true, "larl": true, "lgrl": true, "lgfrl": true, "llgfrl": true, "lghrl": true, "llghrl": true,
	"ltgr": true, "ltgfr": true, "ltg": true, "ltgf": true, "lcgr": true, "lcgfr": true, "lngr": true, "lpgr": true,
	"lgdr": true,
	// Distinct-operand and shift forms: the first operand is only written.
	"agrk": true, "sgrk": true, "algrk": true, "slgrk": true, "ngrk": true, "ogrk": true, "xgrk": true,
	"aghik": true, "alghsik": true, "sllg": true, "srlg": true, "srag": true, "slag": true, "rllg": true,
	"msgrkc": true, "popcnt": true, "flogr": true,
}

// s390xCompareBranch are the compare-and-branch instructions: relative
// (…j) and to an address (…b).
var s390xCompareBranch = map[string]bool{
	"crj": true, "cgrj": true, "cij": true, "cgij": true, "clrj": true, "clgrj": true, "clij": true, "clgij": true,
	"crb": true, "cgrb": true, "cib": true, "cgib": true, "clrb": true, "clgrb": true, "clib": true, "clgib": true,
}

// s390xArgBit returns the argument-register bit of general register r
// (r2-r6), 0 for the others.
func s390xArgBit(r int) uint32 {
	if r >= 2 && r <= 6 {
		return 1 << (r - 2)
	}
	return 0
}

// s390xRange returns the argument-register bits of the register range
// r1..r3 of a load or store multiple (wrapping after r15).
func s390xRange(r1, r3 int) uint32 {
	var m uint32
	for r := r1; ; r = (r + 1) % 16 {
		m |= s390xArgBit(r)
		if r == r3 {
			break
		}
	}
	return m
}

// s390xFlow classifies one instruction for the liveness walk and for
// FallThrough.
func s390xFlow(code []byte, pc uint64) (flowInst, bool) {
	inst, err := decodeS390X(code)
	if err != nil {
		return flowInst{}, false
	}
	f := flowInst{len: inst.Len}
	op := inst.Op.String()
	var gprs []int // general registers in the operands, in order
	var isGPR []bool
	var base int
	for _, a := range inst.Args {
		switch r := a.(type) {
		case nil:
		case s390xasm.Reg:
			if r <= s390xasm.R15 {
				gprs = append(gprs, int(r-s390xasm.R0))
				isGPR = append(isGPR, true)
				continue
			}
		case s390xasm.Base:
			if r != 0 {
				gprs = append(gprs, int(r))
				isGPR = append(isGPR, false)
				base = int(r)
			}
			continue
		case s390xasm.Index:
			if r != 0 {
				gprs = append(gprs, int(r))
				isGPR = append(isGPR, false)
			}
			continue
		}
	}
	readAll := func() {
		for _, r := range gprs {
			f.reads |= s390xArgBit(r)
		}
	}
	mask := -1
	if m, ok := inst.Args[0].(s390xasm.Mask); ok {
		mask = int(m)
	}
	r2 := -1 // the second register operand of an RR branch
	if len(gprs) > 0 && isGPR[len(gprs)-1] {
		r2 = gprs[len(gprs)-1]
	}
	f.target, _ = s390xRel(inst, pc)
	switch {
	case op == "brc" || op == "brcl":
		switch mask {
		case 0:
			f.nop = true
		case 15:
			f.kind = flowJump
		default:
			f.kind = flowBranch
		}
	case op == "bcr":
		switch {
		case mask == 0 || r2 <= 0:
			// nop, or a serialisation: no branch
			f.nop = mask == 0
		case r2 == 14 && mask == 15:
			f.kind = flowReturn
		case r2 == 14:
			f.kind = flowCondReturn
		default:
			readAll()
			f.kind = flowIndirect
		}
	case op == "bc":
		if mask != 0 {
			readAll()
			f.kind = flowIndirect
		}
	case op == "bras" || op == "brasl":
		f.kind = flowCall
	case op == "basr" || op == "bassm":
		if r2 > 0 {
			readAll()
			f.kind = flowIndirect
		} else if len(gprs) > 0 && isGPR[0] {
			f.writes = s390xArgBit(gprs[0])
		}
	case op == "bas" || op == "bsm" || op == "ex" || op == "exrl":
		readAll()
		f.kind = flowIndirect
	case strings.HasPrefix(op, "brct") || strings.HasPrefix(op, "brx") ||
		s390xCompareBranch[op] && strings.HasSuffix(op, "j"):
		readAll()
		f.kind = flowBranch
	case op == "bctr" || op == "bctgr":
		readAll()
		if r2 > 0 {
			f.kind = flowIndirect
		}
	case strings.HasPrefix(op, "bct") || strings.HasPrefix(op, "bx") || s390xCompareBranch[op]:
		readAll()
		f.kind = flowIndirect
	case op == "svc" || op == "diag":
		f.kind = flowSyscall
	case op == "lpsw" || op == "lpswe" || op == "lpswey" || op == "pr":
		f.kind = flowStop
	case op == "stm" || op == "stmy" || op == "stmg" || op == "stmh":
		if len(gprs) >= 2 {
			rs := s390xRange(gprs[0], gprs[1])
			if base == 15 && gprs[0] == 6 {
				// The prologue's "stmg %r6,%r15,48(%r15)" saves the
				// callee-saved registers: not a use of r6.
				rs &^= s390xArgBit(6)
			}
			f.reads = rs | s390xArgBit(base)
		}
	case op == "lm" || op == "lmy" || op == "lmg" || op == "lmh":
		if len(gprs) >= 2 {
			f.reads = s390xArgBit(base)
			if op == "lmg" {
				f.writes = s390xRange(gprs[0], gprs[1]) &^ f.reads
			}
		}
	case strings.HasPrefix(op, "st") && op != "stck" || s390xFullWrite[op]:
		// Stores read every operand; the full-width loads all but the first.
		for i, r := range gprs {
			if i == 0 && isGPR[0] && !strings.HasPrefix(op, "st") {
				continue
			}
			f.reads |= s390xArgBit(r)
		}
		if !strings.HasPrefix(op, "st") && len(gprs) > 0 && isGPR[0] {
			f.writes = s390xArgBit(gprs[0]) &^ f.reads
		}
	default:
		// Two-operand arithmetic reads its first operand too; 32-bit
		// loads keep the high half: every register operand is read.
		readAll()
	}
	return f, true
}

// S390XFrame reads a function's code from its first instruction up to
// (not including) the stopped pc, in a straight line, and says where the
// return address is there: r14 until the prologue saves it (stmg or stg of
// r14 based on r15), then at r14Off from the caller's stack pointer. spDelta
// is how far r15 has moved from the caller's stack pointer (negative once
// the frame is allocated, 0 again after the epilogue's lmg restores it).
// It is the innermost frame's unwinding when there is no call-frame
// information: a caller frame's save area is found through the back chain.
// ok is false when the code does not decode.
func S390XFrame(code []byte) (spDelta, r14Off int64, r14Saved, ok bool) {
	disp := func(a s390xasm.Arg) (int64, bool) {
		switch d := a.(type) {
		case s390xasm.Disp20:
			return int64(int32(uint32(d)<<12) >> 12), true
		case s390xasm.Disp12:
			return int64(d), true
		}
		return 0, false
	}
	gpr := func(a s390xasm.Arg) int {
		if r, ok := a.(s390xasm.Reg); ok && r <= s390xasm.R15 {
			return int(r - s390xasm.R0)
		}
		return -1
	}
	r14Live := true // r14 holds the return address
	for off := 0; off < len(code); {
		inst, err := decodeS390X(code[off:])
		if err != nil {
			return 0, 0, false, false
		}
		off += inst.Len
		args := inst.Args
		switch op := inst.Op.String(); op {
		case "stmg", "stg":
			r1, r3 := gpr(args[0]), gpr(args[0])
			di := 1
			if op == "stmg" {
				r3, di = gpr(args[1]), 2
			}
			d, okd := disp(args[di])
			okb := args[3] == s390xasm.Base(15)
			if okd && okb && r14Live && r1 >= 0 && r3 >= 0 && r1 <= 14 && 14 <= r3 {
				r14Off, r14Saved = d+8*int64(14-r1)+spDelta, true
			}
		case "lay", "la":
			if gpr(args[0]) == 14 {
				r14Live = false
			}
			if gpr(args[0]) == 15 {
				if d, okd := disp(args[1]); okd && args[3] == s390xasm.Base(15) && args[2] == s390xasm.Index(0) {
					spDelta += d
				} else {
					spDelta = 0 // restored from elsewhere: assume the caller's
				}
			}
		case "aghi", "agfi":
			if gpr(args[0]) == 15 {
				switch v := args[1].(type) {
				case s390xasm.Sign16:
					spDelta += int64(v)
				case s390xasm.Sign32:
					spDelta += int64(v)
				}
			}
		case "lmg":
			r1, r3 := gpr(args[0]), gpr(args[1])
			if r1 >= 0 && r3 >= 0 && r1 <= 15 && 15 <= r3 {
				spDelta = 0
			}
			if r1 >= 0 && r3 >= 0 && r1 <= 14 && 14 <= r3 {
				r14Saved, r14Live = false, true
			}
		case "lg", "lgr", "larl", "lghi", "lr":
			switch r := gpr(args[0]); {
			case r == 15 && (op == "lg" || op == "lgr"):
				spDelta = 0 // the epilogue restores the caller's r15
			case r == 14 && op == "lg":
				r14Saved, r14Live = false, true // reloaded: the return address is in r14 again
			case r == 14:
				r14Live = false // scratch now; a later store of it is no save
			}
		}
	}
	return spDelta, r14Off, r14Saved, true
}
