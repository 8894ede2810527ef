package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

func renderMarkdown(w io.Writer, r *lockstep.Result, opt Options) error {
	var b bytes.Buffer
	s := summarize(r)
	name := r.Scenario
	if name == "" {
		name = "lockstep"
	}
	verdict := "FAIL"
	if r.Passed {
		verdict = "PASS"
	}
	fmt.Fprintf(&b, "### lockstep `%s`: **%s**, %s (expected %s)\n\n", mdCode(name), s.Outcome, verdict, mdText(s.Expect))
	if r.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", mdText(r.Description))
	}
	if s.First != nil {
		d := s.First
		fmt.Fprintf(&b, "**First divergence** at %s: %s `%s`", mdText(divWhere(d)), d.Kind, mdCode(d.Summary))
		pa, pb := sidePC(d, 0), sidePC(d, 1)
		switch {
		case summaryNamesWhere(d) || divPC(d) == "":
		case pa == pb:
			fmt.Fprintf(&b, " at `%s`", mdCode(pa))
		default:
			fmt.Fprintf(&b, ": %s at `%s`, %s at `%s`", mdText(sideLabel(r, 0)), mdCode(pa), mdText(sideLabel(r, 1)), mdCode(pb))
		}
		b.WriteString(".\n\n")
	}
	if d := s.Localised; d != nil {
		fmt.Fprintf(&b, "**Localised** at %s: `%s`.\n\n", mdText(divWhere(d)), mdCode(d.Summary))
	}
	if len(r.Injections) > 0 {
		fmt.Fprintf(&b, "**Injected** (%s):\n\n", injectedNote)
		for _, in := range r.Injections {
			fmt.Fprintf(&b, "- %s\n", mdText(injectionLine(r, in)))
		}
		b.WriteString("\n")
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "**Error:** %s\n\n", mdText(firstTextLine(r.Error)))
	}
	fmt.Fprintf(&b, "a = **%s** (%s) · b = **%s** (%s)", mdText(sideLabel(r, 0)), mdText(sideLine(r.Sides[0])),
		mdText(sideLabel(r, 1)), mdText(sideLine(r.Sides[1])))
	if r.Mode != "" {
		fmt.Fprintf(&b, " · %s", mdText(string(r.Mode)))
	}
	fmt.Fprintf(&b, " · %d/%d sync points reached · %s\n\n", s.Reached, s.SyncTotal, mdText(countsLine(s)))

	if len(r.Syncs) > 0 {
		tasks := false
		for _, sy := range r.Syncs {
			tasks = tasks || syncTask(sy) != ""
		}
		if tasks {
			b.WriteString("| # | sync point | hit | status | pc a | pc b | task | divergences |\n")
			b.WriteString("|---:|---|---:|---|---|---|---|---:|\n")
		} else {
			b.WriteString("| # | sync point | hit | status | pc a | pc b | divergences |\n")
			b.WriteString("|---:|---|---:|---|---|---|---:|\n")
		}
		for _, sy := range r.Syncs {
			status := mdText(string(sy.Status))
			if sy.Status == lockstep.SyncDiverge || sy.Status == lockstep.SyncUnreached || sy.Status == lockstep.SyncIncomplete {
				status = "**" + status + "**"
			}
			if why := incompleteWhy(sy); why != "" {
				status += " (" + mdText(why) + ")"
			}
			task := ""
			if tasks {
				task = " " + mdText(syncTask(sy)) + " |"
			}
			fmt.Fprintf(&b, "| %d | `%s` | %d | %s | %s | %s |%s %d |\n", sy.Index+1, mdCode(sy.Break), sy.Hit,
				status, mdSyncPC(sy, 0), mdSyncPC(sy, 1), task, sy.Divergences)
		}
		b.WriteString("\n")
	}

	for _, sy := range r.Syncs {
		if l := localizationLine(sy); l != "" {
			fmt.Fprintf(&b, "Sync point %d: %s.\n\n", sy.Index+1, mdText(l))
		}
	}
	head := b.Len()
	by, other := groupBySync(r)
	var all []*compare.Divergence
	for _, sy := range r.Syncs {
		all = append(all, by[sy.Index]...)
	}
	all = append(all, other...)
	shown, noise := visible(all, opt.Verbose)
	dumps := map[string]string{} // a memory dump already shown → where
	for _, g := range groupRegisters(shown) {
		d := g.D
		title := fmt.Sprintf("%s: [%s] %s", divWhere(d), d.Kind, g.Summary())
		if d.Noise {
			title += " (noise)"
		}
		fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n", htmlEscape(title))
		switch key := memoryKey(d); {
		case len(g.Regs) > 1:
			if pc := divPC(d); pc != "" {
				fmt.Fprintf(&b, "pc: `%s`\n\n", mdCode(pc))
			}
			mdRegisters(&b, g.Regs)
		case key != "" && dumps[key] != "":
			fmt.Fprintf(&b, "The same bytes differ as at %s.\n", mdText(dumps[key]))
		default:
			if key != "" {
				dumps[key] = divWhere(d)
			}
			mdDivergence(&b, r, d, opt)
		}
		b.WriteString("\n</details>\n\n")
	}
	if noise > 0 {
		fmt.Fprintf(&b, "_%s within noise not shown._\n\n", compare.Plural(noise, "divergence", "divergences"))
	}
	for _, sy := range r.Syncs {
		mdState(&b, r, sy)
	}
	tail := b.Len()
	if len(r.Notes) > 0 {
		b.WriteString("**Notes**\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", mdText(n))
		}
		b.WriteString("\n")
	}
	if r.Error != "" && strings.Contains(r.Error, "\n") {
		b.WriteString("<details><summary>error</summary>\n\n")
		writeFence(&b, "", r.Error)
		b.WriteString("\n</details>\n")
	}
	out := capMarkdown(b.Bytes(), head, tail, shown)
	out = bytes.TrimRight(out, "\n")
	out = append(out, '\n')
	_, err := w.Write(out)
	return err
}

// MarkdownLimit is the most characters a Markdown report holds: what a
// GitHub comment accepts. A longer report keeps its summary, its table and
// one line per divergence, and says where the details are.
const MarkdownLimit = 65536

// capMarkdown fits a report into MarkdownLimit. full is the whole report;
// full[:head] is the summary and table, full[head:tail] the details,
// full[tail:] the notes and error.
func capMarkdown(full []byte, head, tail int, shown []*compare.Divergence) []byte {
	if len(full) <= MarkdownLimit {
		return full
	}
	var b bytes.Buffer
	b.Write(full[:head])
	fmt.Fprintf(&b, "_The details (%d characters) do not fit a %d-character comment: they are in the text, HTML and JSON reports of this run._\n\n",
		tail-head, MarkdownLimit)
	for _, d := range shown {
		fmt.Fprintf(&b, "- %s: [%s] %s\n", mdText(divWhere(d)), d.Kind, mdText(d.Summary))
	}
	b.WriteString("\n")
	b.Write(full[tail:])
	const note = "\n_… cut to fit a comment; the full report is in the text, HTML and JSON reports of this run._\n"
	if b.Len() <= MarkdownLimit {
		return b.Bytes()
	}
	out := b.Bytes()[:MarkdownLimit-len(note)]
	if i := bytes.LastIndexByte(out, '\n'); i > 0 {
		out = out[:i+1]
	}
	return append(out, note...)
}

// memoryKey identifies a memory divergence's dump, so the same bytes
// differing at several sync points are shown once; "" for other kinds.
func memoryKey(d *compare.Divergence) string {
	if d.Memory == nil || len(d.Memory.Rows) == 0 {
		return ""
	}
	m := d.Memory
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%x|%x|%d", m.Name, m.Space, m.Addr[0], m.Addr[1], m.Length)
	for _, row := range m.Rows {
		fmt.Fprintf(&b, "|%d:%d:%x:%x:%v", row.Offset, row.Skipped, row.A, row.B, row.Diff)
	}
	return b.String()
}

// mdSyncPC is side i's PC at a sync point, in code.
func mdSyncPC(sy lockstep.SyncResult, i int) string {
	if !sy.Reached[i] {
		return "not reached"
	}
	return "`" + mdCode(locText(sy.PC[i])) + "`"
}

func mdDivergence(b *bytes.Buffer, r *lockstep.Result, d *compare.Divergence, opt Options) {
	if pc := divPC(d); pc != "" {
		fmt.Fprintf(b, "pc: `%s`\n\n", mdCode(pc))
	}
	switch {
	case d.Register != nil:
		mdRegisters(b, []compare.RegisterDiff{*d.Register})
	case d.Memory != nil:
		fmt.Fprintf(b, "%s\n\n", mdText(memHeader(d.Memory)))
		var t strings.Builder
		p := newPalette(false)
		for _, row := range d.Memory.Rows {
			if row.Skipped > 0 {
				fmt.Fprintf(&t, "  … %s …\n", compare.Plural(row.Skipped, "equal row", "equal rows"))
				continue
			}
			for _, l := range hexRowLines(row, p) {
				t.WriteString(l + "\n")
			}
		}
		if l := memTruncated(d.Memory); l != "" {
			t.WriteString("  " + l + "\n")
		}
		writeFence(b, "", t.String())
	case d.CallPath != nil:
		c := d.CallPath
		fmt.Fprintf(b, "%s (`-` %s only, `+` %s only)\n\n", mdText(callPathLabel(c.Source)), mdText(sideLabel(r, 0)), mdText(sideLabel(r, 1)))
		var u strings.Builder
		for _, l := range pathLines(c) {
			u.WriteString(l.text() + "\n")
		}
		if u.Len() == 0 {
			u.WriteString("a: " + pathString(c.A) + "\nb: " + pathString(c.B) + "\n")
		}
		writeFence(b, "diff", u.String())
		if opt.Verbose {
			var t strings.Builder
			for i, fs := range [2][]compare.Frame{c.A, c.B} {
				fmt.Fprintf(&t, "%s frames:\n", [2]string{"a", "b"}[i])
				for k, f := range fs {
					for j, l := range frameLines(f, "      ") {
						if j == 0 {
							l = fmt.Sprintf("#%-2d %s", k, l)
						}
						fmt.Fprintf(&t, "  %s\n", l)
					}
				}
			}
			b.WriteString("\n")
			writeFence(b, "", t.String())
		}
	case d.Arrival != nil:
		fmt.Fprintf(b, "- a (%s): %s\n- b (%s): %s\n", mdText(sideLabel(r, 0)), mdText(arrivalSide(d.Arrival, d.PC[0], 0)),
			mdText(sideLabel(r, 1)), mdText(arrivalSide(d.Arrival, d.PC[1], 1)))
	case d.Exit != nil:
		fmt.Fprintf(b, "- a (%s): %s\n- b (%s): %s\n", mdText(sideLabel(r, 0)), mdText(exitSide(d.Exit, 0)),
			mdText(sideLabel(r, 1)), mdText(exitSide(d.Exit, 1)))
	case d.Stats != nil:
		mdStats(b, r, d.Stats)
	case d.Instruction != nil:
		in := d.Instruction
		if in.Granularity != "" {
			fmt.Fprintf(b, "compared by %s\n\n", mdText(string(in.Granularity)))
		}
		var rows [][]string
		for i := 0; i < 2; i++ {
			rows = append(rows, []string{[2]string{"a", "b"}[i], sidePC(d, i), instrBytes(in, i), in.Disasm[i]})
		}
		writeFence(b, "", alignColumns(rows))
		if len(in.Registers) > 0 {
			b.WriteString("\nRegisters that differ after it:\n\n")
			mdRegisters(b, in.Registers)
		}
		if len(in.CallPath[0]) > 0 || len(in.CallPath[1]) > 0 {
			fmt.Fprintf(b, "\n- a path: `%s`\n- b path: `%s`\n", mdCode(pathString(in.CallPath[0])), mdCode(pathString(in.CallPath[1])))
		}
	}
}

// mdState writes what each side looked like at sy in a collapsed block:
// pc, compared registers and backtrace side by side, differing values and
// functions in bold.
func mdState(b *bytes.Buffer, r *lockstep.Result, sy lockstep.SyncResult) {
	v, ok := buildState(sy)
	if !ok {
		return
	}
	fmt.Fprintf(b, "<details><summary>%s: where each side was</summary>\n\n", htmlEscape(syncTitle(sy)))
	fmt.Fprintf(b, "| | a (%s) | b (%s) |\n|---|---|---|\n", mdText(sideLabel(r, 0)), mdText(sideLabel(r, 1)))
	cell := func(s string, bold bool) string {
		if s == "" {
			return ""
		}
		c := "`" + mdCode(s) + "`"
		if bold {
			c = "**" + c + "**"
		}
		return c
	}
	row := func(label string, r stateRow) {
		fmt.Fprintf(b, "| %s | %s | %s |\n", label, cell(r.A, r.Differs), cell(r.B, r.Differs))
	}
	row("pc", v.PC)
	for _, rg := range v.Registers {
		row("`"+mdCode(rg.Label)+"`", rg)
	}
	for _, l := range v.Backtrace {
		row(mdText(l.Label), l)
	}
	b.WriteString("\n</details>\n\n")
}

// mdRegisters writes a register table. The symbolic and bits columns are
// dropped when they are empty in every row.
func mdRegisters(b *bytes.Buffer, regs []compare.RegisterDiff) {
	head := []string{"register", "a", "b", "a symbolic", "b symbolic", "bits"}
	rows := make([][]string, len(regs))
	keep := []bool{true, true, true, false, false, false}
	for i, rg := range regs {
		rows[i] = []string{"`" + mdCode(rg.Name) + "`", "`" + mdCode(rg.Values[0]) + "`", "`" + mdCode(rg.Values[1]) + "`",
			mdOptCode(rg.Symbolic[0]), mdOptCode(rg.Symbolic[1]), mdText(strings.Join(rg.Bits, " "))}
		for c, v := range rows[i] {
			keep[c] = keep[c] || v != ""
		}
	}
	row := func(cells []string) {
		for c, v := range cells {
			if keep[c] {
				b.WriteString("| " + v + " ")
			}
		}
		b.WriteString("|\n")
	}
	row(head)
	for c := range head {
		if keep[c] {
			b.WriteString("|---")
		}
	}
	b.WriteString("|\n")
	for _, r := range rows {
		row(r)
	}
}

// alignColumns lays plain-text rows out in columns two spaces apart, each
// as wide as its widest cell; columns empty in every row are dropped and
// trailing spaces trimmed.
func alignColumns(rows [][]string) string {
	var width []int
	for _, r := range rows {
		for c, v := range r {
			if c >= len(width) {
				width = append(width, 0)
			}
			width[c] = max(width[c], utf8.RuneCountInString(v))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var l strings.Builder
		for c, v := range r {
			if width[c] == 0 {
				continue
			}
			if l.Len() > 0 {
				l.WriteString("  ")
			}
			l.WriteString(pad(v, width[c]))
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	return b.String()
}

func mdOptCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + mdCode(s) + "`"
}

// writeFence writes body in a code fence longer than any backtick run in it.
func writeFence(b *bytes.Buffer, lang, body string) {
	fence := "```"
	for strings.Contains(body, fence) {
		fence += "`"
	}
	b.WriteString(fence + lang + "\n")
	b.WriteString(strings.TrimRight(body, "\n"))
	b.WriteString("\n" + fence + "\n")
}

// mdText escapes text for a Markdown paragraph or table cell: HTML
// metacharacters, Markdown emphasis and link syntax, pipes and newlines.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '#', '|', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\n', '\r':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode makes s safe inside a single-backtick code span in a table cell:
// backticks become ' and pipes are escaped (GFM tables split on them).
func mdCode(s string) string {
	s = strings.NewReplacer("`", "'", "|", `\|`, "\n", " ", "\r", " ").Replace(s)
	return s
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "\n", " ").Replace(s)
}

// mdStats writes a statistics table, the counters beyond the tolerance in
// bold.
func mdStats(b *bytes.Buffer, r *lockstep.Result, st *compare.StatsTable) {
	fmt.Fprintf(b, "%s\n\n", mdText(statsCaption(st)))
	fmt.Fprintf(b, "| counter | a (%s) | b (%s) | b−a | ratio |\n|---|---:|---:|---:|---:|\n", mdText(sideLabel(r, 0)), mdText(sideLabel(r, 1)))
	for _, row := range statsRows(st) {
		name, a, bv := "`"+mdCode(row.Name)+"`", row.A, row.B
		if row.Differs {
			name, a, bv = "**"+name+"**", "**"+a+"**", "**"+bv+"**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", name, a, bv, row.Change, mdText(row.Ratio))
	}
	b.WriteString("\n")
}
