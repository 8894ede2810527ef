package suite

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MarkdownCap is the most characters a GitHub comment accepts, and so the
// hard cap of the merged Markdown summary.
const MarkdownCap = 65536

var statusIcon = map[Status]string{
	StatusPassed: "✅", StatusFailed: "❌", StatusInfra: "⚠️", StatusScenario: "🛑", StatusMissing: "❓", StatusSkipped: "⏭️",
}

// RenderMarkdown writes a summary of x that fits a pull-request comment:
// the counts, one table row per scenario, then the Markdown report of each
// scenario that did not pass, for as many as fit in limit bytes (never
// more than limit characters). What does not fit is left out with a note
// naming where the full reports are. Report paths resolve against dir.
func RenderMarkdown(w io.Writer, dir string, x *Index, limit int) error {
	var head bytes.Buffer
	verdict := "✅ passed"
	if !x.Passed() {
		verdict = "❌ failed"
	}
	fmt.Fprintf(&head, "# lockstep suite %s: %s\n\n", mdCell(x.Suite), verdict)
	fmt.Fprintf(&head, "%d scenarios: %s", len(x.Planned), countsText(x))
	if x.Counts[StatusInfra] > 0 {
		fmt.Fprintf(&head, " (infrastructure failures are not the change's fault: retry them)")
	}
	head.WriteString("\n\n")
	for _, n := range x.Notes {
		fmt.Fprintf(&head, "> %s\n", mdCell(n))
	}
	if len(x.Notes) > 0 {
		head.WriteString("\n")
	}
	var rows []string
	for _, r := range x.Results {
		rows = append(rows, fmt.Sprintf("| %s %s | %s | %s | %s | %s | %s |\n", statusIcon[r.Status], r.Status, mdCell(r.Name),
			r.Outcome, r.Expect, mdCell(truncate(firstText(r), 200)), r.Duration.Round(1e6)))
	}
	const tableHead = "| status | scenario | outcome | expect | first divergence or error | time |\n|---|---|---|---|---|---|\n"
	note := func(left int) string {
		return fmt.Sprintf("\n> %d more left out to fit a %d-character comment: the full reports are in the merged artifacts (%s, %s/NAME.md).\n",
			left, limit, MergedHTML, MergedReports)
	}
	const noteRoom = 300
	var b bytes.Buffer
	b.Write(head.Bytes())
	b.WriteString(tableHead)
	for i, row := range rows {
		if b.Len()+len(row)+noteRoom > limit {
			b.WriteString(note(len(rows) - i))
			_, err := w.Write(b.Bytes())
			return err
		}
		b.WriteString(row)
	}
	left := 0
	for _, r := range x.Results {
		p, ok := r.Reports["md"]
		if !ok || r.Status == StatusPassed {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return fmt.Errorf("markdown: %w", err)
		}
		sec := fmt.Sprintf("\n<details><summary>%s %s</summary>\n\n%s\n</details>\n", mdCell(r.Name), r.Status, shiftHeadings(string(data)))
		if left > 0 || b.Len()+len(sec)+noteRoom > limit {
			left++
			continue
		}
		b.WriteString(sec)
	}
	if left > 0 {
		b.WriteString(note(left))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func countsText(x *Index) string {
	var parts []string
	for _, st := range []Status{StatusPassed, StatusFailed, StatusScenario, StatusInfra, StatusMissing, StatusSkipped} {
		if n := x.Counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

func firstText(r ScenarioResult) string {
	return strings.TrimPrefix(firstOf(r), ": ")
}

// mdCell makes s safe in a table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// shiftHeadings moves a report's headings two levels down, under the
// summary's.
func shiftHeadings(md string) string {
	lines := strings.Split(md, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			lines[i] = "##" + l
		}
	}
	return strings.Join(lines, "\n")
}
