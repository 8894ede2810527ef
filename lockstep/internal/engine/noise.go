package engine

import (
	"slices"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// regOptions are the register comparison options of spec: its ignore
// rules, the architecture's flag bits and, unless disabled, learned noise.
func (e *Engine) regOptions(p guest.Pair, spec scenario.CompareSpec) compare.RegOptions {
	ropt := compare.RegOptions{Ignore: spec.Ignore, Flags: p[0].Arch.CompareFlags()}
	if !e.cfg.NoNoise {
		ropt.Noise = e.sc.Noise.Registers
	}
	return ropt
}

// symbolizers returns per-side symbolisation for different builds, and
// nothing for one binary, whose addresses compare raw.
func (e *Engine) symbolizers(p guest.Pair) [2]compare.SymbolizeFunc {
	if e.cfg.Same {
		return [2]compare.SymbolizeFunc{}
	}
	return [2]compare.SymbolizeFunc{p[0].Symbolize, p[1].Symbolize}
}

// CallSymbolizers are the symbolisers for comparing call arguments and
// stored values between builds. Beyond symbol+offset they map an address
// in no symbol but inside an allocated section (a string literal in
// .rodata, say) to that section alone, so such pointers compare equal
// between builds: the literal moves with the layout, and without DWARF its
// identity is unknown.
func (e *Engine) CallSymbolizers(p guest.Pair) [2]compare.SymbolizeFunc {
	if e.cfg.Same {
		return [2]compare.SymbolizeFunc{}
	}
	var out [2]compare.SymbolizeFunc
	for i, g := range p {
		out[i] = func(addr uint64) (compare.Location, bool) {
			if l, ok := g.Symbolize(addr); ok {
				return l, true
			}
			if g.Syms == nil {
				return compare.Location{Addr: addr}, false
			}
			if sec, ok := g.Syms.Section(addr); ok {
				return compare.Location{Addr: addr, Symbol: "(" + sec + ")"}, true
			}
			return compare.Location{Addr: addr}, false
		}
	}
	return out
}

// memoryNoise reports whether every differing byte of range m lies in the
// learned noise for it. Noise offsets count from the symbol (or address)
// start, the range from its own offset within it.
func (e *Engine) memoryNoise(m scenario.MemoryRange, a, b compare.Source) (bool, error) {
	if e.cfg.NoNoise {
		return false, nil
	}
	for _, nm := range e.sc.Noise.Memory {
		if nm.HasAddress != m.HasAddress || (m.HasAddress && nm.Address != m.Address) || (!m.HasAddress && nm.Symbol != m.Symbol) {
			continue
		}
		if len(nm.Offsets) == 0 {
			return true, nil
		}
		allowed := map[uint64]bool{}
		for _, o := range nm.Offsets {
			allowed[o] = true
		}
		noise := a.Size() == b.Size()
		err := compare.DiffOffsets(a, b, func(off int64) bool {
			noise = noise && allowed[m.Offset+uint64(off)]
			return noise
		})
		return noise, err
	}
	return false, nil
}

// callPathNoise reports whether a call-path difference involves only
// functions learned as noise.
func (e *Engine) callPathNoise(d *compare.CallPathDiff) bool {
	if e.cfg.NoNoise || len(e.sc.Noise.CallPath) == 0 {
		return false
	}
	noisy := map[string]bool{}
	for _, n := range e.sc.Noise.CallPath {
		noisy[n] = true
	}
	for _, name := range OneSided(d) {
		if !noisy[name] {
			return false
		}
	}
	return true
}

// OneSided returns the functions present on one side of a call-path diff
// only, each once, in order.
func OneSided(d *compare.CallPathDiff) []string {
	var out []string
	for _, name := range slices.Concat(d.OnlyA, d.OnlyB) {
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// RegOptions are the options registers of spec compare with on p: the
// ignored registers and bits, the flag layout and the learned noise.
func (e *Engine) RegOptions(p guest.Pair, spec scenario.CompareSpec) compare.RegOptions {
	return e.regOptions(p, spec)
}

// MemoryNoise is the scenario's learned memory noise, none when learned
// noise is off.
func (e *Engine) MemoryNoise() []scenario.NoiseMemory {
	if e.cfg.NoNoise {
		return nil
	}
	return e.sc.Noise.Memory
}
