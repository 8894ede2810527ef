package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/fatih/color"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// style colours a string; the identity when colour is off.
type style func(a ...any) string

// palette holds the styles of the text report.
type palette struct {
	on                        bool
	a, b, ok, bad, warn, bold style
	dim, head, diffA, diffB   style
}

func newPalette(on bool) palette {
	mk := func(attrs ...color.Attribute) style {
		if !on {
			return fmt.Sprint
		}
		c := color.New(attrs...)
		c.EnableColor() // Options.Color decides, not the global NoColor
		return c.SprintFunc()
	}
	return palette{
		on: on,
		// Red and green mean verdicts only: the sides are blue and magenta,
		// so neither the good nor the regressed kernel reads as an error.
		a:     mk(color.FgBlue),
		b:     mk(color.FgMagenta),
		ok:    mk(color.FgGreen, color.Bold),
		bad:   mk(color.FgRed, color.Bold),
		warn:  mk(color.FgYellow, color.Bold),
		bold:  mk(color.Bold),
		dim:   mk(color.Faint),
		head:  mk(color.FgCyan, color.Bold),
		diffA: mk(color.FgBlack, color.BgBlue),
		diffB: mk(color.FgBlack, color.BgMagenta),
	}
}

// textWriter accumulates the report; the result is written once.
type textWriter struct {
	r   *lockstep.Result
	buf bytes.Buffer
	p   palette
	opt Options
}

// line writes one formatted line (or several, split at newlines), each
// wrapped to TextWidth columns.
func (t *textWriter) line(format string, a ...any) {
	for l := range strings.SplitSeq(fmt.Sprintf(format, a...), "\n") {
		for _, w := range wrapLine(l, TextWidth) {
			t.buf.WriteString(w)
			t.buf.WriteByte('\n')
		}
	}
}

func renderText(w io.Writer, r *lockstep.Result, opt Options) error {
	t := &textWriter{r: r, p: newPalette(opt.Color), opt: opt}
	t.summary(r)
	t.details(r)
	t.trailer(r)
	_, err := w.Write(t.buf.Bytes())
	return err
}

func (t *textWriter) outcome(s summary) string {
	switch s.Outcome {
	case "IDENTICAL":
		return t.p.ok(s.Outcome)
	case "DIVERGED":
		return t.p.bad(s.Outcome)
	}
	return t.p.warn(s.Outcome)
}

func (t *textWriter) verdict(r *lockstep.Result, s summary) string {
	if r.Outcome == lockstep.OutcomeError {
		return t.p.warn("FAIL") + " (run error)"
	}
	v := t.p.bad("FAIL")
	if r.Passed {
		v = t.p.ok("PASS")
	}
	return fmt.Sprintf("%s (expected %s)", v, s.Expect)
}

func (t *textWriter) summary(r *lockstep.Result) {
	s := summarize(r)
	p := t.p
	t.line("%s %s  %s  %s", p.bold("lockstep"), p.bold(r.Scenario), t.outcome(s), t.verdict(r, s))
	if r.Description != "" {
		t.line("  %s", r.Description)
	}
	kv := func(k, v string) { t.line("  %-10s%s", k, v) }
	if r.File != "" {
		kv("file", r.File)
	}
	if r.Mode != "" {
		kv("mode", string(r.Mode))
	}
	var rows [][]cell
	for i, sd := range r.Sides {
		ver := ""
		if sd.Version != "" {
			ver = "QEMU " + sd.Version
		}
		rows = append(rows, []cell{
			{pad("side "+[2]string{"a", "b"}[i], 8), nil},
			{sideLabel(r, i), [2]style{p.a, p.b}[i]},
			{sd.Accel, nil}, {sd.CPU, nil}, {sd.Machine, nil},
			{baseName(sd.Kernel), nil}, {attachedText(sd), nil}, {ver, nil},
		})
	}
	t.table("  ", rows, false)
	for _, in := range r.Injections {
		kv("injected", p.warn(injectionLine(r, in))+" "+p.dim("(deliberate)"))
	}
	if s.First != nil {
		kv("first", p.bold(firstLine(s.First)))
	}
	if s.Localised != nil {
		kv("localised", p.bold(firstLine(s.Localised)))
	}
	kv("found", countsLine(s))
	reached := fmt.Sprintf("%d/%d sync points", s.Reached, s.SyncTotal)
	if r.Stats.Steps > 0 {
		reached += fmt.Sprintf(", %d steps", r.Stats.Steps)
	}
	if r.Duration > 0 {
		reached += ", " + fmtDuration(r.Duration)
	}
	kv("reached", reached)
	if r.Error != "" {
		kv("error", p.warn(indentLines(strings.TrimRight(r.Error, "\n"), strings.Repeat(" ", 12))))
	}
}

func (t *textWriter) details(r *lockstep.Result) {
	by, other := groupBySync(r)
	for _, sy := range r.Syncs {
		t.buf.WriteByte('\n')
		var status string
		switch sy.Status {
		case lockstep.SyncMatch:
			status = t.p.ok(string(sy.Status))
		case lockstep.SyncDiverge, lockstep.SyncUnreached, lockstep.SyncIncomplete:
			status = t.p.bad(string(sy.Status))
		default:
			status = t.p.warn(string(sy.Status))
		}
		head := t.p.head("── "+syncTitle(sy)) + "  " + status
		if why := incompleteWhy(sy); why != "" {
			head += " " + t.p.dim("("+why+")")
		}
		if pc := syncPC(sy); pc != "" {
			head += "  " + t.p.dim("pc "+pc)
		}
		if sy.Steps > 0 {
			head += t.p.dim(fmt.Sprintf("  %d steps", sy.Steps))
		}
		if t.opt.Verbose && sy.Duration > 0 {
			head += t.p.dim("  " + fmtDuration(sy.Duration))
		}
		t.line("%s", head)
		if l := localizationLine(sy); l != "" {
			t.line("  %s", t.p.dim(l))
		}
		if task := syncTask(sy); task != "" {
			t.line("  %s", t.p.dim("task "+task))
		}
		for _, in := range r.Injections {
			if in.Sync == sy.Index {
				t.line("  %s %s", t.p.warn("[injected]"), injectionLine(r, in))
			}
		}
		t.divergences(by[sy.Index])
		if t.opt.Verbose && sy.Stats != nil && !hasKind(by[sy.Index], compare.KindStats) {
			t.stats(sy.Stats, "  ")
		}
		if t.opt.Verbose {
			t.state(sy)
		}
	}
	if len(other) > 0 {
		t.buf.WriteByte('\n')
		t.line("%s", t.p.head("── outside sync points"))
		t.divergences(other)
	}
}

func (t *textWriter) divergences(ds []*compare.Divergence) {
	shown, noise := visible(ds, t.opt.Verbose)
	for _, g := range groupRegisters(shown) {
		if len(g.Regs) > 1 {
			t.divHeader(g.D, g.Summary())
			t.registerTable(g.Regs, "    ")
			continue
		}
		t.divergence(g.D)
	}
	if noise > 0 {
		t.line("  %s", t.p.dim(fmt.Sprintf("(%s within noise; -v shows them)", compare.Plural(noise, "divergence", "divergences"))))
	}
}

func (t *textWriter) divHeader(d *compare.Divergence, summary string) {
	kind := t.p.bold("[" + string(d.Kind) + "]")
	if d.Noise {
		kind += t.p.dim(" (noise)")
	}
	step := ""
	if d.Step > 0 {
		step = fmt.Sprintf("step %d: ", d.Step)
	}
	t.line("  %s %s%s", kind, step, summary)
	if pc := divPC(d); pc != "" {
		t.line("    pc  %s", pc)
	}
}

func (t *textWriter) divergence(d *compare.Divergence) {
	t.divHeader(d, d.Summary)
	const ind = "    "
	switch {
	case d.Register != nil:
		t.registerTable([]compare.RegisterDiff{*d.Register}, ind)
	case d.Memory != nil:
		t.memory(d.Memory, ind)
	case d.CallPath != nil:
		t.callPath(d.CallPath, ind)
	case d.Arrival != nil:
		t.line("%sa  %s", ind, arrivalSide(d.Arrival, d.PC[0], 0))
		t.line("%sb  %s", ind, arrivalSide(d.Arrival, d.PC[1], 1))
	case d.Exit != nil:
		t.line("%sa  %s", ind, exitSide(d.Exit, 0))
		t.line("%sb  %s", ind, exitSide(d.Exit, 1))
	case d.Instruction != nil:
		t.instruction(d, ind)
	case d.Stats != nil:
		t.stats(d.Stats, ind)
	}
}

// stats writes a statistics table: the counters that moved most, both
// sides' deltas, the change and the ratio; "≠" marks those beyond the
// tolerance.
func (t *textWriter) stats(st *compare.StatsTable, ind string) {
	t.line("%s%s", ind, t.p.dim(statsCaption(st)))
	rows := [][]cell{{{"counter", t.p.dim}, {"a " + sideLabel(t.r, 0), t.p.a}, {"b " + sideLabel(t.r, 1), t.p.b},
		{"b-a", t.p.dim}, {"ratio", t.p.dim}, {"", nil}}}
	for _, r := range statsRows(st) {
		mark, sa, sb := "", style(nil), style(nil)
		if r.Differs {
			mark, sa, sb = "≠", t.p.a, t.p.b
		}
		rows = append(rows, []cell{{r.Name, t.p.bold}, {r.A, sa}, {r.B, sb}, {r.Change, nil}, {r.Ratio, nil}, {mark, t.p.warn}})
	}
	t.table(ind, rows, true)
}

// pad right-pads s to w runes, measured without colour codes.
func pad(s string, w int) string {
	n := utf8.RuneCountInString(s)
	if n >= w {
		return s
	}
	return s + strings.Repeat(" ", w-n)
}

// cell is a table cell: plain text and the style it is shown in.
type cell struct {
	text string
	st   style
}

// table writes rows with columns padded to the widest plain text. Columns
// whose cells are all empty are dropped; with header set, the first row
// names the columns and does not count.
func (t *textWriter) table(ind string, rows [][]cell, header bool) {
	if len(rows) == 0 {
		return
	}
	ncol := len(rows[0])
	keep := make([]bool, ncol)
	width := make([]int, ncol)
	for c := 0; c < ncol; c++ {
		for ri, row := range rows {
			if c < len(row) && (ri > 0 || !header) && row[c].text != "" {
				keep[c] = true
			}
		}
		if c == 0 {
			keep[c] = true
		}
		for _, row := range rows {
			if c < len(row) {
				width[c] = max(width[c], utf8.RuneCountInString(row[c].text))
			}
		}
	}
	for _, row := range rows {
		var b strings.Builder
		b.WriteString(ind)
		last := -1
		for c := 0; c < ncol; c++ {
			if keep[c] {
				last = c
			}
		}
		for c := 0; c < ncol && c < len(row); c++ {
			if !keep[c] {
				continue
			}
			txt := row[c].text
			if c != last {
				txt = pad(txt, width[c])
			}
			st := row[c].st
			if st == nil || row[c].text == "" {
				b.WriteString(txt)
			} else {
				// Colour only the text, not the padding.
				b.WriteString(st(row[c].text) + txt[len(row[c].text):])
			}
			if c != last {
				b.WriteString("  ")
			}
		}
		t.line("%s", strings.TrimRight(b.String(), " "))
	}
}

func (t *textWriter) registerTable(regs []compare.RegisterDiff, ind string) {
	dim := t.p.dim
	rows := [][]cell{{{"register", dim}, {"a", dim}, {"b", dim}, {"a symbolic", dim}, {"b symbolic", dim}, {"bits", dim}}}
	for _, rg := range regs {
		rows = append(rows, []cell{
			{rg.Name, t.p.bold},
			{rg.Values[0], t.p.a},
			{rg.Values[1], t.p.b},
			{rg.Symbolic[0], t.p.a},
			{rg.Symbolic[1], t.p.b},
			{strings.Join(rg.Bits, " "), t.p.warn},
		})
	}
	t.table(ind, rows, true)
}

func (t *textWriter) memory(m *compare.MemoryDiff, ind string) {
	t.line("%s%s", ind, memHeader(m))
	for _, row := range m.Rows {
		if row.Skipped > 0 {
			t.line("%s%s", ind, t.p.dim("  … "+compare.Plural(row.Skipped, "equal row", "equal rows")+" …"))
			continue
		}
		for _, l := range hexRowLines(row, t.p) {
			t.line("%s%s", ind, l)
		}
	}
	if l := memTruncated(m); l != "" {
		t.line("%s%s", ind, t.p.dim("  "+l))
	}
}

// hexRowLines renders one hexdump row. An equal row is one line marked "=";
// a differing row is an "a" and a "b" line, then (without colour) a caret
// line under the differing bytes.
func hexRowLines(row compare.HexRow, p palette) []string {
	a, b := hexBytes(row.A), hexBytes(row.B)
	off := fmt.Sprintf("+%04x", row.Offset)
	if !rowDiffers(row) {
		return []string{fmt.Sprintf("%s  =  %s  |%s|", off, hexCols(a, nil, nil), asciiOf(a))}
	}
	n := max(len(a), len(b), len(row.Diff))
	mark := make([]bool, n)
	for i := range mark {
		mark[i] = diffAt(row, a, b, i)
	}
	la := fmt.Sprintf("%s  %s  %s  |%s|", off, p.a("a"), hexCols(a, mark, p.diffA), asciiOf(a))
	lb := fmt.Sprintf("%s  %s  %s  |%s|", strings.Repeat(" ", len(off)), p.b("b"), hexCols(b, mark, p.diffB), asciiOf(b))
	out := []string{la, lb}
	if !p.on {
		out = append(out, strings.TrimRight(strings.Repeat(" ", len(off)+5)+caretCols(mark), " "))
	}
	return out
}

// hexCols lays out up to 16 bytes as "xx xx … xx  xx …" with a gap after
// the eighth; marked bytes are styled with st when st is set.
func hexCols(bs []string, mark []bool, st style) string {
	var b strings.Builder
	for i := 0; i < max(16, len(bs)); i++ {
		if i > 0 {
			b.WriteByte(' ')
			if i == 8 {
				b.WriteByte(' ')
			}
		}
		h := "  "
		if i < len(bs) {
			h = pad(bs[i], 2)
		}
		if st != nil && i < len(mark) && mark[i] && i < len(bs) {
			h = st(h)
		}
		b.WriteString(h)
	}
	return b.String()
}

func caretCols(mark []bool) string {
	var b strings.Builder
	for i := 0; i < max(16, len(mark)); i++ {
		if i > 0 {
			b.WriteByte(' ')
			if i == 8 {
				b.WriteByte(' ')
			}
		}
		if i < len(mark) && mark[i] {
			b.WriteString("^^")
		} else {
			b.WriteString("  ")
		}
	}
	return b.String()
}

func (t *textWriter) callPath(c *compare.CallPathDiff, ind string) {
	t.line("%s%s", ind, t.p.dim(fmt.Sprintf("%s (- %s only, + %s only)", callPathLabel(c.Source), sideLabel(t.r, 0), sideLabel(t.r, 1))))
	lines := pathLines(c)
	if len(lines) == 0 {
		t.line("%s%s %s", ind, t.p.a("a"), pathString(c.A))
		t.line("%s%s %s", ind, t.p.b("b"), pathString(c.B))
	}
	for _, pl := range lines {
		l := pl.text()
		switch {
		case strings.HasPrefix(l, "-"):
			l = t.p.a(l)
		case strings.HasPrefix(l, "+"):
			l = t.p.b(l)
		case strings.HasPrefix(l, "@@"):
			l = t.p.dim(l)
		}
		t.line("%s%s", ind, l)
	}
	if t.opt.Verbose {
		for i, fs := range [2][]compare.Frame{c.A, c.B} {
			t.line("%s%s frames:", ind, [2]string{"a", "b"}[i])
			for k, f := range fs {
				for j, l := range frameLines(f, "      ") {
					if j == 0 {
						l = fmt.Sprintf("#%-2d %s", k, l)
					}
					t.line("%s  %s", ind, l)
				}
			}
		}
	}
}

func (t *textWriter) instruction(d *compare.Divergence, ind string) {
	in := d.Instruction
	if in.Granularity != "" {
		t.line("%s%s", ind, t.p.dim("compared by "+string(in.Granularity)))
	}
	rows := [][]cell{}
	for i := 0; i < 2; i++ {
		st := [2]style{t.p.a, t.p.b}[i]
		rows = append(rows, []cell{
			{[2]string{"a", "b"}[i], st},
			{sidePC(d, i), nil},
			{instrBytes(in, i), t.p.dim},
			{in.Disasm[i], st},
		})
	}
	t.table(ind, rows, false)
	if len(in.Registers) > 0 {
		t.line("%s%s", ind, t.p.dim("registers that differ after it:"))
		t.registerTable(in.Registers, ind+"  ")
	}
	if len(in.CallPath[0]) > 0 || len(in.CallPath[1]) > 0 {
		t.line("%s%s %s", ind, t.p.a("a path"), pathString(in.CallPath[0]))
		t.line("%s%s %s", ind, t.p.b("b path"), pathString(in.CallPath[1]))
	}
}

func (t *textWriter) trailer(r *lockstep.Result) {
	if t.opt.Verbose {
		t.buf.WriteByte('\n')
		t.line("%s", t.p.head("── sides"))
		for i, sd := range r.Sides {
			t.line("  %s %s", [2]string{"a", "b"}[i], sideLabel(r, i))
			if sd.State != "" {
				st := string(sd.State)
				if sd.ExitCode != nil {
					st += fmt.Sprintf(" with code %d", *sd.ExitCode)
				}
				t.line("    ended    %s", st)
			}
			if sd.Symbols != "" && sd.Symbols != sd.Kernel {
				t.line("    symbols  %s", sd.Symbols)
			}
			if sd.Command != "" {
				t.line("    command  %s", sd.Command)
			}
			if tail := strings.TrimRight(sd.SerialTail, "\n"); tail != "" {
				t.line("    serial:")
				for _, l := range strings.Split(tail, "\n") {
					t.line("      %s", l)
				}
			}
		}
		st := r.Stats
		line := fmt.Sprintf("  stats    %d sync points, %d steps", st.SyncPoints, st.Steps)
		if st.StepsPerSec > 0 {
			line += fmt.Sprintf(", %.0f steps/s", st.StepsPerSec)
		}
		if st.RSPPackets > 0 {
			line += fmt.Sprintf(", %d RSP packets", st.RSPPackets)
		}
		t.line("%s", line)
	}
	if len(r.Notes) > 0 {
		t.buf.WriteByte('\n')
		t.line("%s", t.p.head("── notes"))
		for _, n := range r.Notes {
			t.line("  - %s", n)
		}
	}
	// The error is shown once, in the summary: QEMU's own message first.
}

// indentLines indents every line of s after the first by ind, so a
// multi-line value stays under its label.
func indentLines(s, ind string) string {
	return strings.ReplaceAll(s, "\n", "\n"+ind)
}

// state lists what each side looked like at sy (verbose only): pc,
// compared registers and backtrace side by side; "≠" marks a register
// whose values differ or a backtrace line whose functions differ.
func (t *textWriter) state(sy lockstep.SyncResult) {
	v, ok := buildState(sy)
	if !ok {
		return
	}
	dim := t.p.dim
	rows := [][]cell{{{"state", dim}, {"a " + sideLabel(t.r, 0), t.p.a}, {"b " + sideLabel(t.r, 1), t.p.b}, {"", nil}}}
	add := func(r stateRow, st style) {
		mark, sa, sb := "", style(nil), style(nil)
		if r.Differs {
			mark, sa, sb = "≠", t.p.a, t.p.b
		}
		rows = append(rows, []cell{{r.Label, st}, {r.A, sa}, {r.B, sb}, {mark, t.p.warn}})
	}
	add(v.PC, dim)
	for _, r := range v.Registers {
		add(r, t.p.bold)
	}
	for _, r := range v.Backtrace {
		add(r, dim)
	}
	t.table("  ", rows, false)
}
