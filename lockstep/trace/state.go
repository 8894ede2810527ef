package trace

// Indices into State.Regs of an x86 log. The order is fixed and part of
// the API. Other architectures' indices are given by their RegSet.
const (
	RAX = iota
	RBX
	RCX
	RDX
	RSI
	RDI
	RBP
	RSP
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
	RIP // the instruction pointer as logged (EIP/RIP, relative to CS base)
	RFL // RFLAGS (EFLAGS in 32-bit dumps)
	CR0
	CR2
	CR3
	CR4
	EFER
	ES // segment selectors
	CS
	SS
	DS
	FS
	GS
	FSBase // segment bases of FS and GS
	GSBase
	NumRegs // the number of x86 registers in State.Regs
)

var regNames = [NumRegs]string{
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	"rip", "rflags", "cr0", "cr2", "cr3", "cr4", "efer",
	"es", "cs", "ss", "ds", "fs", "gs", "fs_base", "gs_base",
}

// RegName returns the lower-case name of register index i ("rax", "rflags",
// "fs_base"), or "" when i is out of range. The names match QEMU's gdbstub
// target description where one exists.
func RegName(i int) string {
	if i < 0 || i >= NumRegs {
		return ""
	}
	return regNames[i]
}

// RegIndex returns the index of the register called name (as RegName
// returns it; "eflags" and "rfl" are accepted for RFL), or -1.
func RegIndex(name string) int {
	switch name {
	case "eflags", "rfl", "efl":
		return RFL
	}
	for i, n := range regNames {
		if n == name {
			return i
		}
	}
	return -1
}

// GPRs lists the general-purpose registers RAX to R15.
var GPRs = []int{RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15}

// DefaultRegisters is what Compare compares when Options.Registers is
// empty: the general-purpose registers, RIP and RFL.
var DefaultRegisters = append(append([]int(nil), GPRs...), RIP, RFL)

// State is the CPU state QEMU logged before one instruction.
type State struct {
	// Seq is the 0-based index of this state in its log.
	Seq uint64
	// PC is the linear address of the instruction: CS base + RIP.
	PC uint64
	// Regs holds the registers by the index constants (RAX ... GSBase) on
	// x86, by the indices of the log's RegSet elsewhere; the rest are zero.
	// In 32-bit x86 dumps the upper halves and R8-R15 are zero.
	Regs [MaxRegs]uint64
	// Mode is 64 for a long-mode x86 dump (RAX=...), 32 otherwise (EAX=...,
	// which QEMU also uses for real mode and compatibility mode); 64 for
	// aarch64 and riscv64.
	Mode int
	// CPL is the current privilege level; Halted reports HLT=1.
	CPL    uint8
	Halted bool
}

// sameState reports whether two states are identical apart from Seq.
func sameState(a, b *State) bool {
	return a.PC == b.PC && a.Regs == b.Regs && a.Mode == b.Mode && a.CPL == b.CPL && a.Halted == b.Halted
}
