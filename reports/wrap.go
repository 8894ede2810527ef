package reports

import (
	"strings"
	"unicode/utf8"
)

// TextWidth is the widest line the text report writes: a longer line is
// wrapped at spaces, its continuation indented under its value.
const TextWidth = 120

// wrapLine wraps s (one line, perhaps with ANSI colour sequences, which
// take no columns) to at most width columns. Breaks go at spaces; a word
// longer than a line is cut. Continuation lines hang under the second
// word, the value of a "label  value" line ("command  qemu-system-…",
// "localised sync 3 …", "[memory] results: …"), or, when that is past a
// third of the width, four columns in from the line's own indentation.
func wrapLine(s string, width int) []string {
	if visibleWidth(s) <= width {
		return []string{s}
	}
	hang := strings.Repeat(" ", hangingIndent(s, width))
	var out []string
	for first := true; ; first = false {
		if !first {
			s = hang + strings.TrimLeft(s, " ")
		}
		if visibleWidth(s) <= width {
			return append(out, s)
		}
		cut, rest := breakAt(s, width, len(hang))
		out = append(out, strings.TrimRight(cut, " "))
		s = rest
	}
}

// breakAt splits s before the column width is passed: at the last space
// after column min (outside colour sequences), else at width itself.
func breakAt(s string, width, min int) (string, string) {
	col, lastSpace := 0, -1
	for i := 0; i < len(s); {
		if n := escapeLen(s[i:]); n > 0 {
			i += n
			continue
		}
		if col == width {
			if lastSpace >= 0 {
				return s[:lastSpace], s[lastSpace+1:]
			}
			return s[:i], s[i:]
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == ' ' && col > min {
			lastSpace = i
		}
		col++
		i += n
	}
	return s, ""
}

// hangingIndent is where a wrapped line's continuation starts.
func hangingIndent(s string, width int) int {
	plain := []rune(stripEscapes(s))
	col := 0
	for col < len(plain) && plain[col] == ' ' {
		col++
	}
	lead := col
	for col < len(plain) && plain[col] != ' ' {
		col++
	}
	for col < len(plain) && plain[col] == ' ' {
		col++
	}
	if col <= width/3 && col < len(plain) {
		return col
	}
	return min(lead+4, width/3)
}

// visibleWidth counts the columns of s: runes outside colour sequences.
func visibleWidth(s string) int {
	return utf8.RuneCountInString(stripEscapes(s))
}

func stripEscapes(s string) string {
	if !strings.Contains(s, "\x1b[") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if n := escapeLen(s[i:]); n > 0 {
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// escapeLen is the length of the ANSI CSI sequence ("\x1b[…m") s starts
// with, or 0.
func escapeLen(s string) int {
	if !strings.HasPrefix(s, "\x1b[") {
		return 0
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; c >= 0x40 && c <= 0x7e {
			return i + 1
		}
	}
	return 0
}
