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
// name only in a, "+" one only in b, " " one in both.
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
	return &CallPathDiff{Source: source, A: a, B: b, Unified: unified(na, nb)}
}

// unified returns a line diff of two name lists, one prefixed line per name.
func unified(a, b []string) string {
	dmp := diffmatchpatch.New()
	ta, tb := joinLines(a), joinLines(b)
	ca, cb, lines := dmp.DiffLinesToChars(ta, tb)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	var sb strings.Builder
	for _, d := range diffs {
		prefix := " "
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			prefix = "-"
		case diffmatchpatch.DiffInsert:
			prefix = "+"
		}
		for _, line := range strings.SplitAfter(d.Text, "\n") {
			if line == "" {
				continue
			}
			sb.WriteString(prefix)
			sb.WriteString(strings.TrimSuffix(line, "\n"))
			sb.WriteByte('\n')
		}
	}
	return sb.String()
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
