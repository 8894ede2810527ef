package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
)

// maskDeadArgs returns copies of two call sequences in which the argument
// registers that neither side's function reads are zeroed: without DWARF
// the arity is unknown, and leftovers in unused registers are not
// differences.
func maskDeadArgs(p guest.Pair, a, b []compare.Call) ([]compare.Call, []compare.Call) {
	a, b = slices.Clone(a), slices.Clone(b)
	for i := range min(len(a), len(b)) {
		if a[i].Name != b[i].Name {
			continue
		}
		la, lb := p[0].LiveArgs(a[i].Loc.Addr), p[1].LiveArgs(b[i].Loc.Addr)
		if la == nil || lb == nil {
			continue
		}
		a[i].Args, b[i].Args = slices.Clone(a[i].Args), slices.Clone(b[i].Args)
		for j := range min(len(a[i].Args), len(b[i].Args), len(la), len(lb)) {
			if !la[j] && !lb[j] {
				a[i].Args[j], b[i].Args[j] = 0, 0
			}
		}
	}
	return a, b
}

// FirstCallDivergence compares two call sequences by name, order and the
// argument registers each function reads. Only when those all match does
// it look at the registers no side reads, and says so: a caller that sets
// an unused register differently did change, but leftovers in unused
// registers are the usual reason, and they are noise.
func FirstCallDivergence(p guest.Pair, a, b []compare.Call, sym [2]compare.SymbolizeFunc) (int, string, bool) {
	ma, mb := maskDeadArgs(p, a, b)
	if idx, reason, ok := compare.FirstCallDivergence(ma, mb, sym); ok {
		return idx, reason, ok
	}
	idx, reason, ok := compare.FirstCallDivergence(a, b, sym)
	if ok {
		reason += " (an argument register the function does not read)"
	}
	return idx, reason, ok
}

// CallDivergence describes the calls number idx of a and b, the first that
// differ, as an instruction divergence by function at sync point k.
func (e *Engine) CallDivergence(k, idx int, a, b []compare.Call, summary string) compare.Divergence {
	id := &compare.InstructionDiff{Granularity: compare.ByFunction}
	var pcs [2]compare.Location
	for i, cs := range [2][]compare.Call{a, b} {
		if idx < len(cs) {
			pcs[i] = cs[idx].Loc
			id.Disasm[i] = "call " + CallText(cs[idx])
		}
	}
	return e.At(k, compare.Divergence{Kind: compare.KindInstruction, PC: pcs, Summary: summary, Instruction: id})
}

// CallText renders a call with its arguments: "f(rdi=0x1, rsi=0x2)".
func CallText(c compare.Call) string {
	args := make([]string, len(c.Args))
	for i, v := range c.Args {
		args[i] = fmt.Sprintf("%s=%#x", argName(c, i), v)
	}
	return c.Name + "(" + strings.Join(args, ", ") + ")"
}
