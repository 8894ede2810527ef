package guest

import (
	"context"
	"fmt"

	"github.com/lockstep-dev/lockstep/lockstep/arch"
)

// maxInsn is the longest instruction of any supported architecture.
const maxInsn = 16

// code reads up to one instruction's bytes at pc: from the symbol file
// when the address is in it, from guest memory otherwise.
func (g *Guest) code(ctx context.Context, pc uint64) ([]byte, error) {
	if g.Syms != nil {
		if code, err := g.Syms.ReadAt(pc, maxInsn); err == nil {
			return code, nil
		}
	}
	return g.T.ReadMemory(ctx, pc, maxInsn)
}

// Mode returns the x86 operating mode the guest's vCPU runs in now, for
// decoding: 16 in real mode (cr0.PE clear), 64 in long mode (efer.LMA), 32
// otherwise; 0 when the guest is not x86 or the registers are not visible
// (then the architecture's default mode applies). Compatibility-mode and
// 16-bit protected-mode code segments are not told apart: the gdbstub does
// not show the code segment's descriptor.
func (g *Guest) Mode(ctx context.Context) int {
	if g.Arch.Name != "x86_64" && g.Arch.Name != "i386" {
		return 0
	}
	l := g.T.Layout()
	if _, ok := l.Lookup("cr0"); !ok {
		return 0
	}
	names := []string{"cr0"}
	if _, ok := l.Lookup("efer"); ok {
		names = append(names, "efer")
	}
	regs, err := g.T.ReadRegisterSet(ctx, names...)
	if err != nil {
		return 0
	}
	cr0, _ := regs["cr0"].Uint64()
	efer, _ := regs["efer"].Uint64()
	switch {
	case cr0&1 == 0:
		return 16
	case efer&(1<<10) != 0:
		return 64
	}
	return 32
}

// FallThrough returns the address of the instruction after the one at pc
// when that one always continues there (no jump, call, return or trap);
// false when it may not, or when it cannot be decoded.
func (g *Guest) FallThrough(ctx context.Context, pc uint64) (uint64, bool) {
	if g.Arch.FallThrough == nil {
		return 0, false
	}
	code, err := g.code(ctx, pc)
	if err != nil {
		return 0, false
	}
	if mode := g.Mode(ctx); mode != 0 {
		return arch.X86FallThrough(code, pc, mode)
	}
	return g.Arch.FallThrough(code, pc)
}

// disasm decodes one instruction in mode (from Mode; 0 is the
// architecture's default).
func (g *Guest) disasm(code []byte, pc uint64, mode int) (string, int, error) {
	if mode != 0 {
		return arch.DisasmX86(code, pc, mode, g.symName)
	}
	return g.Arch.Disasm(code, pc, g.symName)
}

// Disasm disassembles the instruction at pc, from the symbol file when the
// address is in it and from guest memory otherwise. It returns the text
// (or why there is none) and the instruction's bytes.
func (g *Guest) Disasm(ctx context.Context, pc uint64) (string, []byte) {
	code, err := g.code(ctx, pc)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err), nil
	}
	if g.Arch.Disasm == nil {
		return "(no disassembler for " + g.Arch.Name + ")", code
	}
	text, n, err := g.disasm(code, pc, g.Mode(ctx))
	if err != nil {
		return fmt.Sprintf("(bad instruction: %v)", err), code
	}
	return text, code[:n]
}

func (g *Guest) symName(a uint64) string { return g.Loc(a).String() }

// InsnBefore finds the instruction that ends at addr by decoding its
// function from the start (a linear sweep over the symbol file's code,
// sound for compiler output) in mode (from Mode, taken where the code ran),
// and returns its address, text and bytes. It needs only the symbol file.
func (g *Guest) InsnBefore(addr uint64, mode int) (uint64, string, []byte, bool) {
	l, ok := g.Symbolize(addr)
	if !ok || g.Syms == nil || g.Arch.Disasm == nil || l.Offset == 0 || l.Offset > 1<<16 {
		return 0, "", nil, false
	}
	start := addr - l.Offset
	code, err := g.Syms.ReadAt(start, int(l.Offset))
	if err != nil {
		return 0, "", nil, false
	}
	for off := 0; off < len(code); {
		pc := start + uint64(off)
		text, n, err := g.disasm(code[off:], pc, mode)
		if err != nil || n <= 0 {
			return 0, "", nil, false
		}
		if off+n == len(code) {
			return pc, text, code[off:], true
		}
		off += n
	}
	return 0, "", nil, false
}

// profilingHooks are call targets compiled into function entries that
// neither read nor clobber arguments.
var profilingHooks = map[string]bool{"__fentry__": true, "mcount": true, "_mcount": true, "__cyg_profile_func_enter": true}

// maxLiveDepth bounds how many calls deep LiveArgs follows.
const maxLiveDepth = 4

// maxLiveCode bounds how much of a function LiveArgs decodes.
const maxLiveCode = 16 << 10

// LiveArgs returns which argument registers the function at addr may read,
// from its code in the symbol file; nil when that is unknown.
func (g *Guest) LiveArgs(addr uint64) []bool {
	return g.liveArgsDepth(addr, 0)
}

func (g *Guest) liveArgsDepth(addr uint64, depth int) []bool {
	if v, ok := g.live[addr]; ok {
		return v
	}
	if g.live == nil {
		g.live = map[uint64][]bool{}
	}
	// Provisionally unknown, which also ends recursion through cycles.
	g.live[addr] = nil
	if g.Arch.LiveArgs == nil || g.Syms == nil || depth > maxLiveDepth {
		return nil
	}
	l, ok := g.Symbolize(addr)
	if !ok || l.Offset != 0 {
		return nil // not a function entry: a jump inside a function
	}
	// The whole function, for every path through it (bounded); near the
	// end of a section less is there.
	size := uint64(256)
	if sym, ok := g.Syms.Lookup(l.Symbol); ok && sym.Size > 0 {
		size = min(sym.Size, maxLiveCode)
	}
	var code []byte
	for n := int(size); n >= 1 && code == nil; n /= 2 {
		code, _ = g.Syms.ReadAt(addr, n)
	}
	if code == nil {
		return nil
	}
	live := g.Arch.LiveArgs(code, addr, func(t uint64) ([]bool, bool) {
		if l, ok := g.Symbolize(t); ok && l.Offset == 0 && profilingHooks[l.Symbol] {
			return nil, true
		}
		return g.liveArgsDepth(t, depth+1), false
	})
	g.live[addr] = live
	return live
}
