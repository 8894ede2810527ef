package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// abiFilter keeps, of the register differences at a sync point between two
// builds, those the calling convention makes meaningful there. At the first
// instruction of a function: the argument registers the function reads
// (from its code, through direct calls and tail calls). At a return point
// (at: return): the return value registers. Either way: the stack
// pointer's alignment, and the flag bits that are not leftovers of
// arithmetic. The program counter at a return counts by the function it
// returned to: the offset in the caller moves between builds. The rest are
// leftovers of different code in each build: they are returned as
// informational, never as divergences. A register the scenario names
// itself (not through a group) is always compared. With one binary, or at a
// point that is neither, every difference stands.
func (e *Engine) abiFilter(p guest.Pair, sp *scenario.SyncPoint, pcs [2]compare.Location, regs [2]compareRegs, diffs []compare.RegisterDiff) (kept []compare.RegisterDiff, info []string) {
	ret := sp.At == scenario.AtReturn
	if e.cfg.Same || !ret && !atEntry(p, pcs) {
		return diffs, nil
	}
	a := p[0].Arch
	var live []bool
	if !ret {
		live = liveUnion(p[0].LiveArgs(pcs[0].Addr), p[1].LiveArgs(pcs[1].Addr), len(a.ArgRegs))
	}
	named := func(r string) bool {
		return slices.ContainsFunc(sp.Compare.Registers, func(n string) bool { return strings.EqualFold(n, r) })
	}
	for _, d := range diffs {
		name := strings.ToLower(d.Name)
		switch {
		case named(d.Name):
			kept = append(kept, d)
		case name == strings.ToLower(a.PC):
			if pcs[0].Symbol != "" && pcs[0].Symbol == pcs[1].Symbol {
				info = append(info, d.Name)
			} else {
				kept = append(kept, d)
			}
		case name == strings.ToLower(a.SP) && a.StackAlign > 0:
			va, oka := regs[0].uint(d.Name)
			vb, okb := regs[1].uint(d.Name)
			if oka && okb && va%a.StackAlign == vb%a.StackAlign {
				info = append(info, d.Name)
			} else {
				kept = append(kept, d)
			}
		case len(d.Bits) > 0 && len(a.StatusFlags[name]) > 0:
			var bits []string
			for _, b := range d.Bits {
				if !slices.Contains(a.StatusFlags[name], b) {
					bits = append(bits, b)
				}
			}
			if len(bits) == 0 {
				info = append(info, d.Name)
				continue
			}
			d.Bits = bits
			kept = append(kept, d)
		case ret && slices.Contains(a.RetRegs, name):
			kept = append(kept, d)
		case ret && (slices.Contains(a.ArgRegs, name) || slices.Contains(a.EntryScratch, name)):
			info = append(info, d.Name)
		case !ret && slices.Contains(a.EntryScratch, name):
			info = append(info, d.Name)
		case !ret && slices.Contains(a.ArgRegs, name):
			if i := slices.Index(a.ArgRegs, name); live == nil || live[i] {
				kept = append(kept, d)
			} else {
				info = append(info, d.Name)
			}
		default:
			kept = append(kept, d)
		}
	}
	return kept, info
}

// atEntry reports whether both sides stand at the first instruction of a
// function.
func atEntry(p guest.Pair, pcs [2]compare.Location) bool {
	for i, g := range p {
		if pcs[i].Symbol == "" || pcs[i].Offset != 0 || !g.IsFunc(pcs[i].Symbol) {
			return false
		}
	}
	return true
}

// liveUnion is the argument registers either side's function reads; nil
// when either side's liveness is unknown (then every one may be read).
func liveUnion(a, b []bool, n int) []bool {
	if a == nil || b == nil {
		return nil
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = i < len(a) && a[i] || i < len(b) && b[i]
	}
	return out
}

// compareRegs gives access to a capture's register values.
type compareRegs compare.Regs

// uint returns a register's value (big-endian bytes in compare.Regs).
func (r compareRegs) uint(name string) (uint64, bool) {
	b, ok := r.Values[name]
	if !ok || len(b) > 8 {
		return 0, false
	}
	return beUint(b), true
}

// informational says which register differences were left out at a
// function entry or return between builds, for a note.
func informational(k int, fn string, ret bool, info []string) string {
	verb := "differ"
	if len(info) == 1 {
		verb = "differs"
	}
	where, why := fn, "at a function entry the calling convention gives that no meaning (arguments "+fn+
		" does not read, scratch and callee-saved registers left by different code, the stack pointer beyond its alignment, arithmetic flags)"
	if ret {
		where, why = "return of "+fn, "at a return the calling convention gives that no meaning (all but the return value registers are scratch or the caller's, "+
			"the stack pointer beyond its alignment, the return address's offset in its caller, arithmetic flags)"
	}
	return fmt.Sprintf("sync point %d (%s): %s %s between the builds, but %s: informational, not a divergence; name a register in compare.registers to compare it",
		k+1, where, strings.Join(info, ", "), verb, why)
}
