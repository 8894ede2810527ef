package compare

import "fmt"

// Call is one traced function entry: used to align two different builds at
// function granularity, where instructions cannot be compared.
type Call struct {
	// Name is the function's symbol.
	Name string
	// Args are the argument registers' values at entry.
	Args []uint64
	// ArgNames optionally names Args (e.g. "rdi", "rsi"); "arg0", ...
	// otherwise.
	ArgNames []string
	// Loc is where the call was seen (the function entry).
	Loc Location
}

func (c Call) argName(i int) string {
	if i < len(c.ArgNames) && c.ArgNames[i] != "" {
		return c.ArgNames[i]
	}
	return fmt.Sprintf("arg%d", i)
}

// FirstCallDivergence returns the index of the first call whose name or
// arguments differ, or where one sequence ends before the other, with a
// reason such as "call #213 of mix: rdi 0x10 vs 0x11". Arguments that
// differ raw but symbolise to the same symbol+offset on both sides (when
// symbolize is set) are equal. ok is false when the sequences are equal.
func FirstCallDivergence(a, b []Call, symbolize [2]func(uint64) (Location, bool)) (index int, reason string, ok bool) {
	count := map[string]int{}
	for i := 0; i < len(a) || i < len(b); i++ {
		if i >= len(a) {
			return i, fmt.Sprintf("call #%d: only b calls %s", i+1, b[i].Name), true
		}
		if i >= len(b) {
			return i, fmt.Sprintf("call #%d: only a calls %s", i+1, a[i].Name), true
		}
		ca, cb := a[i], b[i]
		if ca.Name != cb.Name {
			return i, fmt.Sprintf("call #%d: %s vs %s", i+1, ca.Name, cb.Name), true
		}
		count[ca.Name]++
		for j := 0; j < len(ca.Args) || j < len(cb.Args); j++ {
			if j >= len(ca.Args) || j >= len(cb.Args) {
				return i, fmt.Sprintf("call #%d of %s: %d vs %d arguments", count[ca.Name], ca.Name, len(ca.Args), len(cb.Args)), true
			}
			x, y := ca.Args[j], cb.Args[j]
			if x == y {
				continue
			}
			la, oka := symOf(symbolize[0], x)
			lb, okb := symOf(symbolize[1], y)
			if oka && okb && la.Symbol == lb.Symbol && la.Offset == lb.Offset {
				continue
			}
			va, vb := fmt.Sprintf("%#x", x), fmt.Sprintf("%#x", y)
			if oka {
				va += " (" + la.String() + ")"
			}
			if okb {
				vb += " (" + lb.String() + ")"
			}
			return i, fmt.Sprintf("call #%d of %s: %s %s vs %s", count[ca.Name], ca.Name, ca.argName(j), va, vb), true
		}
	}
	return -1, "", false
}
