package calibrate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/scenario"
)

// parseRangeName parses a MemoryDiff name as the engine writes it: a symbol,
// "symbol+0xOFF" or "0xADDR".
func parseRangeName(name string) (scenario.MemoryRange, bool) {
	if rest, ok := strings.CutPrefix(name, "0x"); ok {
		a, err := strconv.ParseUint(rest, 16, 64)
		if err != nil {
			return scenario.MemoryRange{}, false
		}
		return scenario.MemoryRange{Address: a, HasAddress: true}, true
	}
	sym, off, found := strings.Cut(name, "+")
	if sym == "" || strings.ContainsAny(sym, " \t\n") {
		return scenario.MemoryRange{}, false
	}
	m := scenario.MemoryRange{Symbol: sym}
	if found {
		rest, ok := strings.CutPrefix(off, "0x")
		if !ok {
			return scenario.MemoryRange{}, false
		}
		o, err := strconv.ParseUint(rest, 16, 64)
		if err != nil {
			return scenario.MemoryRange{}, false
		}
		m.Offset = o
	}
	return m, true
}

// rangeName is the MemoryDiff name of m, the inverse of parseRangeName.
func rangeName(m scenario.MemoryRange) string {
	switch {
	case m.HasAddress:
		return fmt.Sprintf("%#x", m.Address)
	case m.Offset > 0:
		return fmt.Sprintf("%s+%#x", m.Symbol, m.Offset)
	}
	return m.Symbol
}
