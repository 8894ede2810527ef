package arch

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrUnknownArch is returned by Lookup for an architecture lockstep knows
// nothing about.
var ErrUnknownArch = errors.New("unknown architecture")

// ErrDecode is wrapped by Disasm errors when the bytes are not a valid
// instruction (or are truncated).
var ErrDecode = errors.New("cannot decode instruction")

// Bit is a named bit field of a flags register, e.g. ZF at Shift 6, Width 1,
// or IOPL at Shift 12, Width 2.
type Bit struct {
	Name  string
	Shift uint
	Width uint
}

// Mask returns the field's mask within the register.
func (b Bit) Mask() uint64 {
	w := b.Width
	if w == 0 {
		w = 1
	}
	if w >= 64 {
		return ^uint64(0) << b.Shift
	}
	return ((uint64(1) << w) - 1) << b.Shift
}

// DisasmFunc disassembles the instruction at the start of code, which was
// read from address pc. Sym, when not nil, names an address ("foo+0x10") or
// returns "" (or the bare hex address) when it cannot; branch and
// RIP-relative targets are annotated "<foo+0x10>" with it. It returns the instruction text and its length in bytes.
type DisasmFunc func(code []byte, pc uint64, sym func(uint64) string) (text string, length int, err error)

// Arch describes one guest architecture.
type Arch struct {
	// Name is the canonical name: "x86_64", "i386", "aarch64", "riscv64"
	// or "s390x".
	Name string
	// PC, SP and FP name the program counter, stack pointer and frame
	// pointer as target.xml names them.
	PC, SP, FP string
	// PtrSize is the pointer size in bytes.
	PtrSize int
	// BigEndian is true for big-endian targets.
	BigEndian bool
	// ArgRegs are the integer argument registers of the C calling
	// convention, in order (empty when arguments are passed on the stack).
	ArgRegs []string
	// Flags maps a flags register name (as target.xml names it) to its
	// named bit fields, lowest first.
	Flags map[string][]Bit
	// Disasm disassembles one instruction; nil when unsupported.
	Disasm DisasmFunc
	// CallBefore reports whether code, the bytes immediately before a
	// return address, ends with a call instruction.
	CallBefore func(code []byte) bool
	// MaxCallLen is how many bytes before a return address CallBefore
	// wants to see.
	MaxCallLen int
	// LiveArgs, when set, reports which ArgRegs the function whose code
	// starts at code (at pc) may read as arguments; callee answers the
	// same for a call or jump target (nil when unknown), or says it is
	// transparent (a profiling hook that leaves arguments alone). Nil
	// means every one may be.
	LiveArgs func(code []byte, pc uint64, callee func(target uint64) (live []bool, transparent bool)) []bool
	// Link is the link register holding the return address, "" if none.
	Link string
	// EntryScratch are the registers whose values at a function's first
	// instruction the calling convention gives no meaning (caller-saved
	// scratch and callee-saved registers holding the caller's state), apart
	// from the argument registers the function reads. Between two builds
	// their values are leftovers of different code.
	EntryScratch []string
	// RetRegs are the registers that hold a function's return value.
	RetRegs []string
	// StackAlign is the stack pointer's alignment at a function's first
	// instruction that the calling convention fixes (its value modulo
	// StackAlign is meaningful, the rest of it not); 0 if none.
	StackAlign uint64
	// StatusFlags are the flag bits, by flags register, that hold results
	// of earlier arithmetic: meaningless at a function entry.
	StatusFlags map[string][]string
	// FallThrough, when set, returns the address of the next instruction
	// when the one at the start of code (at pc) always continues there;
	// false for jumps, calls, returns, traps and undecodable bytes.
	FallThrough func(code []byte, pc uint64) (next uint64, ok bool)
	// DWARFRegs maps a DWARF register number (as call-frame information
	// numbers them) to the register's target.xml name; "" or out of range
	// when the gdbstub has no such register. The return-address column
	// (x86-64's 16) maps to the PC.
	DWARFRegs []string
	// WatchBefore is true when the gdbstub reports a write watchpoint hit
	// before the store executes (pc at the store, memory unchanged): the
	// store must be stepped over, with the watchpoint removed, before the
	// new value can be read. x86 and s390x stop after the store.
	WatchBefore bool
	// FrameRecord is where a frame-pointer chain keeps the caller's frame
	// pointer and the return address, as offsets from the frame pointer;
	// nil when the ABI has no frame-pointer chain (s390x).
	FrameRecord *FrameLayout
	// BreakKind is the kind (instruction length) sent with Z0/Z1, as gdb
	// sends it: 1 on x86, 4 on aarch64 and riscv64 (gdb sends 2 at a
	// compressed instruction; QEMU's TCG ignores the kind), 2 on s390x.
	BreakKind int
	// BackChain, when not nil, is the s390x stack back chain: each frame's
	// stack pointer points at the caller's stack pointer (when the code is
	// built with -mbackchain), and the return address is saved at
	// RetAddr from it.
	BackChain *FrameLayout
}

// FrameLayout gives the offsets, from a frame's base register, of the
// caller's saved frame pointer (or back chain) and the return address.
type FrameLayout struct {
	PrevFP, RetAddr int64
}

// FlagBit returns the named bit of the flags register reg, matching both
// names case-insensitively.
func (a *Arch) FlagBit(reg, bit string) (Bit, bool) {
	for r, bits := range a.Flags {
		if !strings.EqualFold(r, reg) {
			continue
		}
		for _, b := range bits {
			if strings.EqualFold(b.Name, bit) {
				return b, true
			}
		}
	}
	return Bit{}, false
}

var registry = map[string]*Arch{}

// aliases maps every accepted name (lowercase) to a canonical name.
var aliases = map[string]string{}

func register(a *Arch, names ...string) {
	registry[a.Name] = a
	aliases[strings.ToLower(a.Name)] = a.Name
	for _, n := range names {
		aliases[strings.ToLower(n)] = a.Name
	}
}

// Lookup returns the architecture called name: a canonical name ("x86_64",
// "i386", "aarch64"), a target.xml <architecture> name ("i386:x86-64",
// "i386", "aarch64") or a QEMU binary suffix ("x86_64"). The returned Arch
// is shared and must not be modified.
func Lookup(name string) (*Arch, error) {
	if c, ok := aliases[strings.ToLower(strings.TrimSpace(name))]; ok {
		return registry[c], nil
	}
	return nil, fmt.Errorf("arch %q (known: %s): %w", name, strings.Join(Names(), ", "), ErrUnknownArch)
}

// Names returns the canonical names of the known architectures, sorted.
func Names() []string {
	return slices.Sorted(maps.Keys(registry))
}
