package arch

// flowKind says how control leaves one instruction, for the generic
// argument-liveness walk of the non-x86 architectures.
type flowKind int

const (
	flowNext       flowKind = iota // always continues with the next instruction
	flowBranch                     // conditional: the target or the next instruction
	flowJump                       // always goes to target (a tail call when outside the function)
	flowCall                       // a direct call of target, then the next instruction
	flowIndirect                   // an indirect jump or call: the rest is unknown
	flowReturn                     // returns: the arguments not yet read are dead
	flowCondReturn                 // returns or continues with the next instruction
	flowStop                       // a trap that does not come back (brk, ebreak, udf)
	flowSyscall                    // an exception that reads registers by convention (svc, ecall)
)

// flowInst is what the liveness walk needs of one instruction: its length,
// how control leaves it, and which argument registers (by index in
// ArgRegs) it reads and which it overwrites entirely without reading.
type flowInst struct {
	len    int
	kind   flowKind
	target uint64 // for flowBranch, flowJump, flowCall
	reads  uint32
	writes uint32
	nop    bool // does nothing (padding)
}

// flowDecoder decodes the instruction at the start of code (at pc); false
// when the bytes are not a valid instruction.
type flowDecoder func(code []byte, pc uint64) (flowInst, bool)

// liveBudget bounds the instructions a liveness walk decodes along all
// paths of one function.
const liveBudget = 4096

// onlyPadding reports whether the code from off to its end is nothing but
// a few instructions that do nothing (the padding after a call that does
// not return).
func onlyPadding(dec flowDecoder, code []byte, off int, pc uint64) bool {
	for i := 0; off < len(code); i++ {
		in, ok := dec(code[off:], pc+uint64(off))
		if !ok || i >= 8 || in.len <= 0 || in.kind != flowNext || in.reads != 0 || in.writes != 0 || !in.nop {
			return false
		}
		off += in.len
	}
	return true
}

// liveArgs reports, for each of n argument registers, whether the
// function starting at code (at pc) may read it as an argument: whether
// some path from the entry reads it before overwriting it. It follows the
// same rules as X86LiveArgs: both ways at a conditional branch, jumps
// inside code, loops once; at a direct call or a jump out of code the
// registers not yet decided take the target's answer from callee (nil:
// live), a transparent target is walked past; a return leaves the rest
// dead; an indirect transfer, a system call, undecodable bytes, running off
// the end of code or the budget leave the rest live. preserved are the
// argument registers a call leaves intact (s390x's r6 is callee-saved):
// the walk continues after a call deciding only those.
func liveArgs(n int, preserved uint32, dec flowDecoder, code []byte, pc uint64, callee func(target uint64) (live []bool, transparent bool)) []bool {
	all := uint32(1)<<n - 1
	live := make([]bool, n)
	budget := liveBudget
	type state struct {
		off     int
		decided uint32
	}
	seen := map[state]bool{}
	rest := func(decided uint32, v []bool) {
		for i := range n {
			if decided&(1<<i) == 0 && (v == nil || i >= len(v) || v[i]) {
				live[i] = true
			}
		}
	}
	var walk func(off int, decided uint32)
	walk = func(off int, decided uint32) {
		for decided&all != all {
			if off < 0 || off >= len(code) || budget <= 0 {
				rest(decided, nil)
				return
			}
			if seen[state{off, decided}] {
				return
			}
			seen[state{off, decided}] = true
			budget--
			in, ok := dec(code[off:], pc+uint64(off))
			if !ok || in.len <= 0 {
				rest(decided, nil)
				return
			}
			off += in.len
			// Reads first: "add a0,a0,a1" reads a0 before it writes it.
			for i := range n {
				if in.reads&(1<<i) != 0 && decided&(1<<i) == 0 {
					live[i] = true
					decided |= 1 << i
				}
			}
			decided |= in.writes & all
			inCode := in.target >= pc && in.target < pc+uint64(len(code))
			switch in.kind {
			case flowNext:
			case flowReturn, flowStop:
				return
			case flowCondReturn:
			case flowSyscall, flowIndirect:
				rest(decided, nil)
				return
			case flowBranch:
				if inCode {
					walk(int(in.target-pc), decided)
				} else {
					rest(decided, nil)
				}
			case flowJump:
				if inCode {
					off = int(in.target - pc)
					continue
				}
				var v []bool
				if callee != nil {
					var transparent bool
					if v, transparent = callee(in.target); transparent {
						v = nil // nothing comes after a tail call to walk past to
					}
				}
				rest(decided, v)
				return
			case flowCall:
				var v []bool
				if callee != nil {
					var transparent bool
					if v, transparent = callee(in.target); transparent {
						continue
					}
				}
				rest(decided, v)
				// The call clobbers the caller-saved argument registers.
				decided |= all &^ preserved
				if decided&all != all && onlyPadding(dec, code, off, pc) {
					return // a noreturn call ends the function
				}
			}
		}
	}
	walk(0, 0)
	return live
}
