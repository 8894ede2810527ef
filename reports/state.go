package reports

import (
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// stateRow is one row of a sync point's captured state, both sides side
// by side: the pc, a register, or one line of the backtraces.
type stateRow struct {
	Label string // "pc", a register name, "backtrace" on the first frame line
	A, B  string
	// Differs marks a register whose values differ, or a backtrace line
	// whose functions differ (offsets and lines are not compared).
	Differs bool
}

// stateView is a sync point's captured state as every format shows it.
type stateView struct {
	PC        stateRow
	Registers []stateRow
	Backtrace []stateRow
}

// hasState reports whether sy records what the sides looked like.
func hasState(sy lockstep.SyncResult) bool {
	for _, st := range sy.State {
		if !st.PC.IsZero() || len(st.Registers) > 0 || len(st.Backtrace) > 0 {
			return true
		}
	}
	return false
}

// buildState lays sy's state out row by row; ok is false when sy has none
// (a point not reached by both sides, or a result from before states).
func buildState(sy lockstep.SyncResult) (v stateView, ok bool) {
	if !hasState(sy) {
		return v, false
	}
	st := sy.State
	v.PC = stateRow{Label: "pc", A: statePC(st[0]), B: statePC(st[1])}
	// Between builds the same code sits at other addresses: the pc
	// differs when its symbol and offset do, as everywhere else.
	v.PC.Differs = st[0].PC.String() != st[1].PC.String()
	v.Registers = stateRegisters(st)
	// Frames are paired by depth from the outermost; a frame's inlined
	// calls follow it, and the other side's column is left empty where it
	// has fewer.
	fa, fb := st[0].Backtrace, st[1].Backtrace
	for k := range max(len(fa), len(fb)) {
		var la, lb []btLine
		if k < len(fa) {
			la = frameBTLines(k, fa[k])
		}
		if k < len(fb) {
			lb = frameBTLines(k, fb[k])
		}
		for j := range max(len(la), len(lb)) {
			var a, b btLine
			if j < len(la) {
				a = la[j]
			}
			if j < len(lb) {
				b = lb[j]
			}
			r := stateRow{A: a.text, B: b.text, Differs: a.fn != b.fn}
			if len(v.Backtrace) == 0 {
				r.Label = "backtrace"
			}
			v.Backtrace = append(v.Backtrace, r)
		}
	}
	return v, true
}

func statePC(s compare.SideState) string {
	if s.PC.IsZero() {
		return "-"
	}
	return locText(s.PC)
}

// stateRegisters pairs the sides' registers by name, in a's order, then
// b's registers that a lacks; a register missing on a side reads "-".
func stateRegisters(st [2]compare.SideState) []stateRow {
	var rows []stateRow
	at := map[string]int{}
	for _, r := range st[0].Registers {
		at[r.Name] = len(rows)
		rows = append(rows, stateRow{Label: r.Name, A: r.Value, B: "-"})
	}
	for _, r := range st[1].Registers {
		if k, ok := at[r.Name]; ok {
			rows[k].B = r.Value
			continue
		}
		rows = append(rows, stateRow{Label: r.Name, A: "-", B: r.Value})
	}
	for k := range rows {
		rows[k].Differs = rows[k].A != rows[k].B
	}
	return rows
}

// btLine is one line of a backtrace listing: a frame, or one of its
// inlined calls on a line of its own.
type btLine struct {
	fn   string // the function, for telling the sides apart
	text string // "#1 kmain+0x48 (demo.c:166)", "     outl [inlined] (lib.h:35)"
}

// backtraceLines lists a backtrace outermost first, numbered from the
// outermost frame, each frame followed by its inlined calls.
func backtraceLines(fs []compare.Frame) []btLine {
	var out []btLine
	for k, f := range fs {
		out = append(out, frameBTLines(k, f)...)
	}
	return out
}

// frameBTLines is frame k of a backtrace: "#k name (pos)", then a line
// for each of its inlined calls, outermost first.
func frameBTLines(k int, f compare.Frame) []btLine {
	var out []btLine
	for j, sf := range sourceFrames(f.Location, f.Location.String()) {
		if j > 0 {
			out = append(out, btLine{fn: sf.name, text: "   " + sf.text()})
			continue
		}
		text := fmt.Sprintf("#%d %s", k, sf.text())
		if f.Uncertain {
			text += " ?"
		}
		out = append(out, btLine{fn: framePathName(f), text: text})
	}
	return out
}
