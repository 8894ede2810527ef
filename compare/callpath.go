package compare

import (
	"slices"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// frameName is the name a frame is compared by: its symbol, or its raw
// address when it has none.
func frameName(f Frame) string {
	if f.Symbol != "" {
		return f.Symbol
	}
	return f.Location.String()
}

// CallPath compares two call paths as sequences of symbol names (offsets
// are ignored, so a layout shift is not a difference) and returns nil when
// they are equal. Unified is a line diff computed with go-diff: "-" marks a
// name only in a, "+" one only in b, " " one in both. OnlyA and OnlyB list
// the names of the "-" and "+" lines, in order.
func CallPath(source string, a, b []Frame) *CallPathDiff {
	na := make([]string, len(a))
	for i, f := range a {
		na[i] = frameName(f)
	}
	nb := make([]string, len(b))
	for i, f := range b {
		nb[i] = frameName(f)
	}
	if slices.Equal(na, nb) {
		return nil
	}
	d := &CallPathDiff{Source: source, A: a, B: b}
	d.Unified, d.OnlyA, d.OnlyB = diffNames(na, nb)
	return d
}

// diffNames returns a line diff of two name lists, one prefixed line per
// name, and the names on its "-" and "+" lines.
func diffNames(a, b []string) (unified string, onlyA, onlyB []string) {
	dmp := diffmatchpatch.New()
	ta, tb := joinLines(a), joinLines(b)
	ca, cb, lines := dmp.DiffLinesToChars(ta, tb)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	var sb strings.Builder
	for _, d := range diffs {
		prefix := " "
		var only *[]string
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			prefix, only = "-", &onlyA
		case diffmatchpatch.DiffInsert:
			prefix, only = "+", &onlyB
		}
		for _, line := range strings.SplitAfter(d.Text, "\n") {
			if line == "" {
				continue
			}
			name := strings.TrimSuffix(line, "\n")
			if only != nil {
				*only = append(*only, name)
			}
			sb.WriteString(prefix)
			sb.WriteString(name)
			sb.WriteByte('\n')
		}
	}
	return sb.String(), onlyA, onlyB
}

// joinLines joins names with a newline after each, so that every line,
// including the last, compares as a whole line.
func joinLines(names []string) string {
	var sb strings.Builder
	for _, n := range names {
		sb.WriteString(strings.ReplaceAll(n, "\n", " "))
		sb.WriteByte('\n')
	}
	return sb.String()
}
