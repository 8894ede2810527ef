package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
)

// locText renders a code location with its source line, as every report
// shows a PC: "kmain+0xa2 (demo.c:175)"; inside an inlined call, the
// innermost function is named: "qemu_exit+0x6 (lib.h:35 in inlined outl)".
// Without a source line it is the symbol form alone.
func locText(l compare.Location) string {
	src := l.Source()
	if src == "" {
		return l.String()
	}
	if len(l.Inlined) > 0 {
		src += " in inlined " + l.Inlined[0].Function
	}
	return l.String() + " (" + src + ")"
}

// srcFrame is one frame as gdb lists it: a function and the line in it.
type srcFrame struct {
	name    string // "kmain+0x12", or an inlined function
	pos     string // "demo.c:175", or ""
	inlined bool
}

// text is "kmain+0x12 (demo.c:175)" or "outl [inlined] (lib.h:35)".
func (f srcFrame) text() string {
	s := f.name
	if f.inlined {
		s += " [inlined]"
	}
	if f.pos != "" {
		s += " (" + f.pos + ")"
	}
	return s
}

// sourceFrames expands l into the frames gdb shows for it, outermost
// first: the function the code belongs to (called name here) at the call
// site of its outermost inlined call, then each inlined function at the
// call site of the next, and the innermost at l's own line.
func sourceFrames(l compare.Location, name string) []srcFrame {
	n := len(l.Inlined)
	out := make([]srcFrame, 0, n+1)
	pos := l.Source()
	if n > 0 {
		pos = l.Inlined[n-1].Source()
	}
	out = append(out, srcFrame{name: name, pos: pos})
	for k := n - 1; k >= 0; k-- {
		pos := l.Source()
		if k > 0 {
			pos = l.Inlined[k-1].Source()
		}
		out = append(out, srcFrame{name: l.Inlined[k].Function, pos: pos, inlined: true})
	}
	return out
}

// frameLines renders a frame of a backtrace listing, with how it was
// found ("via cfi") and its inlined calls on lines of their own under it
// (prefixed by ind).
func frameLines(f compare.Frame, ind string) []string {
	fs := sourceFrames(f.Location, f.Location.String())
	first := fs[0].text()
	if f.Symbol != "" {
		first += fmt.Sprintf(" [%#x]", f.Addr)
	}
	if f.Uncertain {
		first += " ?"
	}
	if f.How != "" {
		first += " via " + f.How
	}
	if len(f.Args) > 0 {
		first += " (" + argsString(f.Args) + ")"
	}
	out := []string{first}
	for _, s := range fs[1:] {
		out = append(out, ind+s.text())
	}
	return out
}

// pathLine is one line of a call-path diff as shown: Op is ' ' (both
// sides), '-' (a only) or '+' (b only); Name is the frame's name and Pos
// each side's source line ("" where none, or on the side that lacks it).
type pathLine struct {
	Op   byte
	Name string
	Pos  [2]string
}

// text renders the line for a unified diff: "-path_b (demo.c:92)", or for
// a line on both sides " kmain (demo.c:172)" when the lines agree, else
// " kmain (a demo.c:172, b demo.c:174)".
func (p pathLine) text() string {
	s := string(p.Op) + p.Name
	switch {
	case p.Op == '-' || p.Pos[1] == "" && p.Pos[0] != "":
		if p.Pos[0] != "" {
			s += " (" + p.Pos[0] + ")"
		}
	case p.Op == '+' || p.Pos[0] == "" || p.Pos[0] == p.Pos[1]:
		if p.Pos[1] != "" {
			s += " (" + p.Pos[1] + ")"
		}
	default:
		s += " (a " + p.Pos[0] + ", b " + p.Pos[1] + ")"
	}
	return s
}

// side renders the line as side i shows it on its own (HTML's two
// columns): the name and that side's source line.
func (p pathLine) side(i int) string {
	if p.Pos[i] == "" {
		return p.Name
	}
	return p.Name + " (" + p.Pos[i] + ")"
}

// pathLines lays a call-path diff out with source lines: the unified
// diff's lines matched back to each side's frames, each followed by the
// frame's inlined calls, outermost first ("outl [inlined]"). Inlined calls
// are not compared (only the frames' functions are), so on a line both
// sides share they are shown once when both have the same, else as each
// side's own ("-" and "+"). When the unified diff does not match the
// frames (a hand-edited JSON), its lines are shown as they are.
func pathLines(c *compare.CallPathDiff) []pathLine {
	raw := unifiedLines(c.Unified)
	out := make([]pathLine, 0, len(raw))
	var ia, ib int
	sides := [2][]compare.Frame{c.A, c.B}
	frameAt := func(i, k int) (compare.Frame, bool) {
		if k < len(sides[i]) {
			return sides[i][k], true
		}
		return compare.Frame{}, false
	}
	for _, l := range raw {
		if l == "" || !strings.ContainsRune(" -+", rune(l[0])) {
			return asIs(raw)
		}
		op, name := l[0], l[1:]
		var fr [2]*compare.Frame
		for i, use := range [2]bool{op != '+', op != '-'} {
			if !use {
				continue
			}
			k := &ia
			if i == 1 {
				k = &ib
			}
			f, ok := frameAt(i, *k)
			if !ok || framePathName(f) != name {
				return asIs(raw)
			}
			fr[i] = &f
			*k++
		}
		var sf [2][]srcFrame
		line := pathLine{Op: op, Name: name}
		for i, f := range fr {
			if f != nil {
				sf[i] = sourceFrames(f.Location, name)
				line.Pos[i] = sf[i][0].pos
			}
		}
		out = append(out, line)
		out = append(out, inlinedLines(op, sf)...)
	}
	if ia != len(c.A) || ib != len(c.B) {
		return asIs(raw)
	}
	return out
}

// inlinedLines are the inlined-call lines under a call-path line with
// operation op, from each side's source frames.
func inlinedLines(op byte, sf [2][]srcFrame) []pathLine {
	var out []pathLine
	add := func(op byte, i int, fs []srcFrame) {
		for _, s := range fs {
			l := pathLine{Op: op, Name: s.name + " [inlined]"}
			l.Pos[i] = s.pos
			out = append(out, l)
		}
	}
	switch op {
	case '-':
		add('-', 0, sf[0][1:])
	case '+':
		add('+', 1, sf[1][1:])
	default:
		a, b := sf[0][1:], sf[1][1:]
		names := func(fs []srcFrame) []string {
			n := make([]string, len(fs))
			for i, f := range fs {
				n[i] = f.name
			}
			return n
		}
		if slices.Equal(names(a), names(b)) {
			for k := range a {
				out = append(out, pathLine{Op: ' ', Name: a[k].name + " [inlined]", Pos: [2]string{a[k].pos, b[k].pos}})
			}
			return out
		}
		add('-', 0, a)
		add('+', 1, b)
	}
	return out
}

// framePathName is the name a call-path diff gives a frame: its symbol,
// or its address when it has none (compare.CallPath's rule).
func framePathName(f compare.Frame) string {
	if f.Symbol != "" {
		return f.Symbol
	}
	return f.Location.String()
}

// asIs turns unified-diff lines into path lines without source.
func asIs(raw []string) []pathLine {
	out := make([]pathLine, 0, len(raw))
	for _, l := range raw {
		if l == "" {
			continue
		}
		out = append(out, pathLine{Op: l[0], Name: l[1:]})
	}
	return out
}
