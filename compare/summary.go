package compare

import (
	"fmt"
	"strings"
)

// RegisterSummary returns a one-line statement of a register difference,
// e.g. "rsi: 0x5a5a vs 0x5a5b", "eflags: 0x246 vs 0x202 (ZF)" or
// "rdi: 0x1010 (buf+0x10) vs 0x2020 (buf+0x20)".
func RegisterSummary(d RegisterDiff) string {
	side := func(i int) string {
		s := shortHex(d.Values[i])
		if d.Symbolic[i] != "" {
			s += " (" + d.Symbolic[i] + ")"
		}
		return s
	}
	s := fmt.Sprintf("%s: %s vs %s", d.Name, side(0), side(1))
	if len(d.Bits) > 0 {
		s += " (" + strings.Join(d.Bits, " ") + ")"
	}
	return s
}

// MemorySummary returns a one-line statement of a memory difference, e.g.
// "results: 8 bytes differ (first at +0x28)". It returns "" for nil.
func MemorySummary(d *MemoryDiff) string {
	if d == nil {
		return ""
	}
	verb := "bytes differ"
	if d.DiffBytes == 1 {
		verb = "byte differs"
	}
	return fmt.Sprintf("%s: %d %s (first at +%#x)", d.Name, d.DiffBytes, verb, d.FirstOffset)
}

// CallPathSummary returns a one-line statement of a call-path difference
// naming the first change, e.g. "call path: path_b → path_c". It returns ""
// for nil.
func CallPathSummary(d *CallPathDiff) string {
	if d == nil {
		return ""
	}
	var del, ins string
scan:
	for _, line := range strings.Split(d.Unified, "\n") {
		if line == "" {
			continue
		}
		switch line[0] {
		case '-':
			if del == "" && ins == "" {
				del = line[1:]
			}
		case '+':
			if ins == "" {
				ins = line[1:]
			}
		case ' ':
			if del != "" || ins != "" {
				break scan
			}
		}
	}
	label := "call path"
	if d.Source == "trace" {
		label = "traced calls"
	}
	switch {
	case del != "" && ins != "":
		return fmt.Sprintf("%s: %s → %s", label, del, ins)
	case del != "":
		return fmt.Sprintf("%s: %s only in a", label, del)
	case ins != "":
		return fmt.Sprintf("%s: %s only in b", label, ins)
	}
	return label + ": differs"
}

// Plural returns "1 thing" or "n things", given both forms.
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
