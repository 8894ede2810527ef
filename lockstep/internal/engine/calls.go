package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
)

// maskDeadArgs returns copies of two call sequences in which the argument
// registers that neither side's function reads are zeroed, except those
// named in keep: without DWARF the arity is unknown, and leftovers in
// unused registers are not differences unless the scenario asks for them.
func maskDeadArgs(p guest.Pair, a, b []compare.Call, keep []string) ([]compare.Call, []compare.Call) {
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
			named := j < len(a[i].ArgNames) && slices.ContainsFunc(keep, func(n string) bool { return strings.EqualFold(n, a[i].ArgNames[j]) })
			if !la[j] && !lb[j] && !named {
				a[i].Args[j], b[i].Args[j] = 0, 0
			}
		}
	}
	return a, b
}

// FirstCallDivergence compares two call sequences by name, order and the
// argument registers each function reads, and those named in keep (the
// scenario's own register names). Other registers a function does not read
// are leftovers of the caller's code: they never make a divergence. dead,
// when the calls match, says where they differ only in such registers (""
// if nowhere), for a note.
func FirstCallDivergence(p guest.Pair, a, b []compare.Call, sym [2]compare.SymbolizeFunc, keep []string) (idx int, reason string, diverged bool, dead string) {
	ma, mb := maskDeadArgs(p, a, b, keep)
	if idx, reason, ok := compare.FirstCallDivergence(ma, mb, sym); ok {
		return idx, reason, ok, ""
	}
	if _, reason, ok := compare.FirstCallDivergence(a, b, sym); ok {
		dead = reason
	}
	return 0, "", false, dead
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
			for _, c := range cs[:idx+1] {
				if c.Loc.Addr == cs[idx].Loc.Addr {
					id.Entry[i]++
				}
			}
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
