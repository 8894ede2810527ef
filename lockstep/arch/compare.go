package arch

import "github.com/lockstep-dev/lockstep/compare"

// CompareFlags converts Flags to the form compare.RegOptions takes.
func (a *Arch) CompareFlags() map[string][]compare.FlagBit {
	out := make(map[string][]compare.FlagBit, len(a.Flags))
	for reg, bits := range a.Flags {
		cb := make([]compare.FlagBit, len(bits))
		for i, b := range bits {
			cb[i] = compare.FlagBit{Name: b.Name, Shift: b.Shift, Width: b.Width}
		}
		out[reg] = cb
	}
	return out
}
