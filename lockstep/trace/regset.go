package trace

import (
	"io"
	"slices"
	"strconv"
)

// MaxRegs bounds the registers of any architecture's State.Regs.
const MaxRegs = 64

// RegSet describes what State.Regs holds on one architecture: the names
// of its indices (as QEMU's gdbstub target description names them), the
// index of the logged PC and of the flags register whose bits
// Options.FlagMask masks. The x86 set's indices are the constants RAX ...
// GSBase; the aarch64, riscv64 and s390x sets are ArchRegNames followed by
// "pc" (s390x's pswa).
type RegSet struct {
	arch     string
	names    []string
	pc       int
	flags    int // -1: none
	defaults []int
	alias    map[string]int
	// volatile registers change on their own between two logs of one
	// unexecuted instruction (riscv64's mip: a timer interrupt pending);
	// they do not stop a repeated state from being collapsed.
	volatile []int
}

var (
	x86Regs = &RegSet{arch: "x86_64", names: regNames[:], pc: RIP, flags: RFL, defaults: DefaultRegisters, alias: map[string]int{"eflags": RFL, "rfl": RFL, "efl": RFL}}
	regSets = map[string]*RegSet{"x86_64": x86Regs}
)

func init() {
	for arch, f := range archFormats {
		rs := &RegSet{arch: arch, names: append(slices.Clip(f.names), "pc"), flags: -1, alias: map[string]int{}}
		rs.pc = len(f.names)
		if len(rs.names) > MaxRegs {
			panic("trace: " + arch + " has more than MaxRegs registers")
		}
		compared := f.need
		if f.compared > 0 {
			compared = f.compared
		}
		for i := range compared {
			rs.defaults = append(rs.defaults, i)
		}
		rs.defaults = append(rs.defaults, rs.pc)
		switch arch {
		case "aarch64":
			rs.flags = slices.Index(rs.names, "cpsr")
			rs.alias["pstate"] = rs.flags
		case "s390x":
			rs.flags = slices.Index(rs.names, "pswm")
			rs.alias["pswa"] = rs.pc
		case "riscv64":
			rs.alias["s0"] = slices.Index(rs.names, "fp")
			rs.volatile = []int{slices.Index(rs.names, "mip")}
			for i := range 32 {
				rs.alias["x"+strconv.Itoa(i)] = i
			}
		}
		regSets[arch] = rs
	}
}

// ArchRegs returns the register set of arch ("x86_64", "aarch64",
// "riscv64", "s390x"), or nil when the trace has no parser for it.
func ArchRegs(arch string) *RegSet { return regSets[arch] }

// Arch returns the architecture the set belongs to.
func (r *RegSet) Arch() string { return r.arch }

// Num returns the number of indices in use.
func (r *RegSet) Num() int { return len(r.names) }

// Name returns the lower-case gdbstub name of index i, or "".
func (r *RegSet) Name(i int) string {
	if i < 0 || i >= len(r.names) {
		return ""
	}
	return r.names[i]
}

// Index returns the index of the register called name (lower case, as
// Name returns it, or an alias such as "eflags" or "s0"), or -1.
func (r *RegSet) Index(name string) int {
	if i, ok := r.alias[name]; ok {
		return i
	}
	return slices.Index(r.names, name)
}

// PC returns the index holding the PC as logged (RIP on x86, relative to
// the CS base; "pc" elsewhere).
func (r *RegSet) PC() int { return r.pc }

// Flags returns the index of the flags register (rflags, cpsr) or -1.
func (r *RegSet) Flags() int { return r.flags }

// Default returns what Compare compares when Options.Registers is empty:
// the general-purpose registers, the PC and the flags.
func (r *RegSet) Default() []int { return r.defaults }

// repeated reports whether b repeats a: the same state apart from Seq and
// the volatile registers.
func (r *RegSet) repeated(a, b *State) bool {
	if len(r.volatile) == 0 {
		return sameState(a, b)
	}
	if a.PC != b.PC || a.Mode != b.Mode || a.CPL != b.CPL || a.Halted != b.Halted {
		return false
	}
	for i := range r.names {
		if a.Regs[i] != b.Regs[i] && !slices.Contains(r.volatile, i) {
			return false
		}
	}
	return true
}

// Source is a log parser that decodes one State at a time: *Parser (x86)
// or the value NewSource returns for other architectures.
type Source interface {
	// Next decodes the next state into s; io.EOF after the last one.
	Next(s *State) error
	// Regs returns the register set of the states.
	Regs() *RegSet
}

// Regs returns the x86 register set.
func (p *Parser) Regs() *RegSet { return x86Regs }

// NewSource returns the parser of arch's "-d cpu" log read from r.
func NewSource(arch string, r io.Reader) (Source, error) {
	if arch == "x86_64" || arch == "i386" {
		return NewParser(r), nil
	}
	p, err := NewArchParser(arch, r)
	if err != nil {
		return nil, err
	}
	return &archSource{p: p, rs: regSets[arch]}, nil
}

// archSource turns ArchParser's states into States.
type archSource struct {
	p  *ArchParser
	rs *RegSet
	st ArchState
}

func (a *archSource) Regs() *RegSet { return a.rs }

func (a *archSource) Next(s *State) error {
	if err := a.p.Next(&a.st); err != nil {
		return err
	}
	s.Seq, s.PC, s.Mode, s.CPL, s.Halted = a.st.Seq, a.st.PC, 64, 0, false
	n := copy(s.Regs[:], a.st.Regs)
	clear(s.Regs[n:])
	s.Regs[a.rs.pc] = a.st.PC
	return nil
}
