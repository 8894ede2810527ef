package scenario

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Resolver resolves names through one side's symbols (typically its ELF).
type Resolver interface {
	// Resolve returns the address of a break expression as accepted by
	// ParseBreak ("symbol", "symbol+0x10"); CheckSymbols passes bare
	// symbol names for memory ranges, trace functions and noise.
	Resolve(expr string) (uint64, error)
	// SymbolSize returns the size of a data or function symbol, and whether
	// the symbol exists with a known size.
	SymbolSize(name string) (uint64, bool)
}

// CheckSymbols checks, on each side, that every symbolic sync break, memory
// range symbol (with its size when the length is omitted), trace function
// that is not a glob, and noise memory symbol resolves. res[0] is guest a's
// resolver and res[1] guest b's; a nil resolver reports that the side has no
// symbols. Every problem is reported with its position and side, as Errors.
func (s *Scenario) CheckSymbols(res [2]Resolver) error {
	var errs errorList
	for i, r := range res {
		g := s.Guests[i]
		side := fmt.Sprintf("guest %s (%s)", SideNames[i], g.Label)
		if r == nil {
			if name := s.usesSymbols(); name != "" {
				errs.addf(g.Pos, "%s: no symbols to resolve %q", side, name)
			}
			continue
		}
		resolve := func(pos Position, what, expr string) {
			if _, err := r.Resolve(expr); err != nil {
				errs.wrap(pos, err, "%s: %s %q", side, what, expr)
				return
			}
			// symbol+offset must not wrap around the address space.
			if sym, off, _, isAddr, err := ParseBreak(expr); err == nil && !isAddr && off != 0 {
				if a, err := r.Resolve(sym); err == nil && a+off < a {
					errs.addf(pos, "%s: %s %q: offset %#x overflows the address of %s (%#x)", side, what, expr, off, sym, a)
				}
			}
		}
		checkedMem := map[Position]bool{}
		checkMemory := func(m MemoryRange) {
			if m.Symbol == "" || checkedMem[m.Pos] {
				return
			}
			checkedMem[m.Pos] = true
			addr, err := r.Resolve(m.Symbol)
			if err != nil {
				errs.wrap(m.Pos, err, "%s: memory symbol %q", side, m.Symbol)
				return
			}
			length := m.Length
			if m.Length == 0 {
				size, ok := r.SymbolSize(m.Symbol)
				switch {
				case !ok || size == 0:
					errs.addf(m.Pos, "%s: memory symbol %q has no size: set length", side, m.Symbol)
					return
				case m.Offset >= size:
					errs.addf(m.Pos, "%s: memory offset %d is beyond symbol %q of size %d", side, m.Offset, m.Symbol, size)
					return
				}
				length = size - m.Offset
				if length > MaxMemoryLength && !m.AllowLarge {
					errs.addf(m.Pos, "%s: memory symbol %q is %d bytes, over %d (256 MiB); set length, or allow_large: true to compare it whole",
						side, m.Symbol, length, MaxMemoryLength)
				}
			}
			if addr+m.Offset < addr || addr+m.Offset+length < addr+m.Offset {
				errs.addf(m.Pos, "%s: memory symbol %q (%#x) + offset %#x + length %d overflows 64 bits", side, m.Symbol, addr, m.Offset, length)
			}
		}
		for _, m := range s.Compare.Memory {
			checkMemory(m)
		}
		for k, sp := range s.Sync {
			if !sp.IsAddr && !sp.Now && sp.Break != "" {
				resolve(s.PosOf(fmt.Sprintf("sync[%d].break", k)), "break", sp.Break)
			}
			for _, m := range sp.Compare.Memory {
				checkMemory(m)
			}
		}
		for k, in := range s.Inject {
			if in.Side != i {
				continue
			}
			if in.Func != "" && !in.FuncIsAddr() {
				resolve(s.PosOf(fmt.Sprintf("inject[%d].at", k)), "injection function", in.Func)
			}
			if m := in.Memory; m != nil && m.Symbol != "" {
				resolve(m.Pos, "injection memory symbol", m.Symbol)
				// Bytes past the symbol's end would corrupt whatever
				// the linker put next: not the fault the scenario names.
				// (A symbol without a size, an assembler label, is
				// taken as it is.)
				n := uint64(len(m.Bytes))
				if size, ok := r.SymbolSize(m.Symbol); ok && size > 0 && (m.Offset >= size || n > size-m.Offset) {
					errs.addf(m.Pos, "%s: injection writes %d bytes at offset %d of symbol %q, which is %d bytes: past its end", side, n, m.Offset, m.Symbol, size)
				}
			}
		}
		for k, f := range s.Trace.Functions {
			if !strings.ContainsAny(f, "*?[\\") {
				resolve(s.PosOf(fmt.Sprintf("trace.functions[%d]", k)), "trace function", f)
			}
		}
		for _, m := range s.Noise.Memory {
			if m.Symbol != "" {
				resolve(m.Pos, "noise symbol", m.Symbol)
			}
		}
	}
	return errs.err()
}

// SameBinary reports whether both sides are symbolised by the same file
// (compared as cleaned absolute paths), so that addresses mean the same
// thing on both sides. Two sides without symbols are not the same binary.
func (s *Scenario) SameBinary() bool {
	a, b := s.Guests[0].Symbols, s.Guests[1].Symbols
	if a == "" || b == "" {
		return false
	}
	return filepath.Clean(a) == filepath.Clean(b)
}
