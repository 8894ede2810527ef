package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

//go:embed html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// The types below are the HTML view model: everything is decided here so
// the template only lays it out.

type htmlPage struct {
	Title, Scenario, Description, File, Mode string
	Outcome, OutcomeClass                    string
	Verdict, VerdictClass, Expect            string
	Labels                                   [2]string
	Sides                                    [2]htmlSide
	First, FirstAnchor                       string
	Localised                                string
	Injected                                 []string
	Counts                                   string
	Reached                                  string
	Syncs                                    []htmlSync
	HasSteps                                 bool // some sync point has a step window
	Other                                    []htmlDiv
	OtherOpen                                bool // no sync section is open and Other has divergences
	HiddenNoise                              int
	Notes                                    []string
	Error                                    string
	Verbose                                  bool
	Generated                                string
}

type htmlSide struct {
	Label, Line, Command, Serial, State string
}

type htmlSync struct {
	Index                                 int
	Link                                  bool
	Title, Status, StatusClass, PC, Steps string
	// Localization says how the sync point's divergence was localised.
	Localization string
	// Task names the Linux task each side ran, "" when unknown.
	Task   string
	Count  int
	Divs   []htmlDiv
	State  *htmlState
	Anchor string
	// Open: the section's <details> starts open. Only the first divergent
	// sync point is, so a large case shows its headline and first
	// divergence and the rest is one click away.
	Open bool
}

// htmlState is a sync point's captured state: rows of pc, registers and
// backtrace lines, each side's text with differing parts marked.
type htmlState struct {
	LabelA, LabelB string
	Summary        string
	Rows           []htmlStateRow
}

type htmlStateRow struct {
	Label string
	A, B  []htmlSpan
	Mono  bool // the label is a register name
	First bool // the first row of a group (registers, backtrace): a rule above it
}

type htmlDiv struct {
	Kind, Where, Summary, PC, Anchor string
	LabelA, LabelB                   string
	Noise                            bool
	Open                             bool // the divergence's <details> starts open
	Registers                        *htmlRegTable
	Memory                           *htmlMem
	Path                             *htmlPath
	Pair                             [][3]string // label, a, b
	Instr                            *htmlInstr
	Stats                            *htmlStats
}

// htmlStats is a statistics table: the counters that moved most.
type htmlStats struct {
	Caption string
	Rows    []statsRow
}

// htmlRegTable is a register table with the side labels for its header.
type htmlRegTable struct {
	LabelA, LabelB string
	Regs           []htmlReg
	HasBits        bool // some row has differing flag bits
}

type htmlReg struct {
	Name       string
	A, B       []htmlSpan
	SymA, SymB string
	Bits       string
}

type htmlSpan struct {
	Text string
	Diff bool
}

type htmlMem struct {
	Header string
	Rows   []htmlHexRow
}

type htmlHexRow struct {
	Offset  string
	Skipped string
	Equal   bool
	A, B    []htmlSpan
	AsciiA  string
	AsciiB  string
}

type htmlPath struct {
	Source string
	Rows   [][2]htmlSpan // each side's frame; Diff marks a one-side frame
	Frames [2][]string
}

type htmlInstr struct {
	Granularity string
	Rows        [][3]string // label, a, b
	Registers   *htmlRegTable
	Paths       [2]string
}

func renderHTML(w io.Writer, r *lockstep.Result, opt Options) error {
	page := buildHTML(r, opt)
	var b strings.Builder
	if err := htmlTemplate.Execute(&b, page); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func buildHTML(r *lockstep.Result, opt Options) htmlPage {
	s := summarize(r)
	p := htmlPage{
		Scenario:    r.Scenario,
		Description: r.Description,
		File:        r.File,
		Mode:        string(r.Mode),
		Outcome:     s.Outcome,
		Expect:      s.Expect,
		Counts:      countsLine(s),
		Reached:     fmt.Sprintf("%d/%d", s.Reached, s.SyncTotal),
		Notes:       r.Notes,
		Error:       r.Error,
		Verbose:     opt.Verbose,
		Labels:      [2]string{sideLabel(r, 0), sideLabel(r, 1)},
	}
	if p.Scenario == "" {
		p.Scenario = "lockstep"
	}
	p.Title = "lockstep: " + p.Scenario + " " + s.Outcome
	p.OutcomeClass = strings.ToLower(s.Outcome)
	switch {
	case r.Outcome == lockstep.OutcomeError:
		p.Verdict, p.VerdictClass = "FAIL (run error)", "error"
	case r.Passed:
		p.Verdict, p.VerdictClass = "PASS", "identical"
	default:
		p.Verdict, p.VerdictClass = "FAIL", "diverged"
	}
	for _, in := range r.Injections {
		p.Injected = append(p.Injected, injectionLine(r, in)+" ("+injectedNote+")")
	}
	if s.Localised != nil {
		p.Localised = firstLine(s.Localised)
	}
	if s.First != nil {
		p.First = firstLine(s.First)
	}
	if r.Stats.Steps > 0 {
		p.Reached += fmt.Sprintf(" · %d steps", r.Stats.Steps)
	}
	if r.Duration > 0 {
		p.Reached += " · " + fmtDuration(r.Duration)
	}
	if !r.Started.IsZero() {
		p.Generated = r.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	for i, sd := range r.Sides {
		hs := htmlSide{Label: sideLabel(r, i), Line: sideLine(sd)}
		if opt.Verbose {
			hs.Command = sd.Command
			hs.Serial = strings.TrimRight(sd.SerialTail, "\n")
			hs.State = string(sd.State)
			if sd.ExitCode != nil {
				hs.State += fmt.Sprintf(" with code %d", *sd.ExitCode)
			}
		}
		p.Sides[i] = hs
	}
	by, other := groupBySync(r)
	n := 0
	conv := func(ds []*compare.Divergence) []htmlDiv {
		shown, noise := visible(ds, opt.Verbose)
		p.HiddenNoise += noise
		out := make([]htmlDiv, 0, len(shown))
		for _, g := range groupRegisters(shown) {
			n++
			h := buildHTMLDiv(r, g.D, opt, fmt.Sprintf("d%d", n))
			if g.D == s.First || (s.First != nil && containsDiv(g, s.First)) {
				p.FirstAnchor = h.Anchor
			}
			if len(g.Regs) > 1 {
				h.Summary = g.Summary()
				h.Registers = htmlRegs(r, g.Regs)
			}
			out = append(out, h)
		}
		return out
	}
	for _, sy := range r.Syncs {
		hs := htmlSync{
			Index:       sy.Index + 1,
			Title:       syncTitle(sy),
			Status:      string(sy.Status),
			StatusClass: statusClass(sy.Status),
			PC:          syncPC(sy),
			Task:        syncTask(sy),
			Count:       sy.Divergences,
			Anchor:      fmt.Sprintf("sync%d", sy.Index),
		}
		if sy.Steps > 0 {
			hs.Steps = fmt.Sprintf("%d", sy.Steps)
			p.HasSteps = true
		}
		hs.Localization = localizationLine(sy)
		hs.Divs = conv(by[sy.Index])
		hs.State = htmlStateOf(r, sy)
		hs.Link = len(hs.Divs) > 0 || hs.State != nil
		p.Syncs = append(p.Syncs, hs)
	}
	p.Other = conv(other)
	openFirstDivergent(&p)
	return p
}

// openDivs is how many divergences of the open sync section start open
// (the first divergence itself always does).
const openDivs = 3

// openFirstDivergent opens the first sync section with a real (not noise)
// divergence, or a diverged status, and the first few divergences in it;
// without one, the section after the last sync point opens if it has any.
func openFirstDivergent(p *htmlPage) {
	openIn := func(ds []htmlDiv) {
		k := 0
		for i := range ds {
			if ds[i].Anchor == p.FirstAnchor || (!ds[i].Noise && k < openDivs) {
				ds[i].Open = true
			}
			if !ds[i].Noise {
				k++
			}
		}
	}
	for i := range p.Syncs {
		sy := &p.Syncs[i]
		if !sy.Link {
			continue
		}
		real := false
		for _, d := range sy.Divs {
			real = real || !d.Noise
		}
		if real || sy.StatusClass == "diverged" {
			sy.Open = true
			openIn(sy.Divs)
			return
		}
	}
	if len(p.Other) > 0 {
		p.OtherOpen = true
		openIn(p.Other)
	}
}

// containsDiv reports whether d is part of group g.
func containsDiv(g divGroup, d *compare.Divergence) bool {
	return g.D == d || (len(g.Regs) > 1 && d.Register != nil && sameRegisterGroup(g.D, d) && slicesContainsReg(g.Regs, d.Register))
}

func slicesContainsReg(regs []compare.RegisterDiff, r *compare.RegisterDiff) bool {
	return slices.ContainsFunc(regs, func(x compare.RegisterDiff) bool { return x.Name == r.Name && x.Values == r.Values })
}

func statusClass(s lockstep.SyncStatus) string {
	switch s {
	case lockstep.SyncMatch:
		return "identical"
	case lockstep.SyncDiverge, lockstep.SyncUnreached, lockstep.SyncIncomplete:
		return "diverged"
	case lockstep.SyncNoise:
		return "noise"
	}
	return "error"
}

func buildHTMLDiv(r *lockstep.Result, d *compare.Divergence, opt Options, anchor string) htmlDiv {
	h := htmlDiv{
		Kind: string(d.Kind), Where: divWhere(d), Summary: d.Summary,
		PC: divPC(d), Noise: d.Noise, Anchor: anchor,
		LabelA: sideLabel(r, 0), LabelB: sideLabel(r, 1),
	}
	switch {
	case d.Register != nil:
		h.Registers = htmlRegs(r, []compare.RegisterDiff{*d.Register})
	case d.Memory != nil:
		h.Memory = htmlMemory(d.Memory)
	case d.CallPath != nil:
		h.Path = htmlCallPath(d.CallPath, opt)
	case d.Arrival != nil:
		h.Pair = [][3]string{{"state", arrivalSide(d.Arrival, d.PC[0], 0), arrivalSide(d.Arrival, d.PC[1], 1)}}
	case d.Exit != nil:
		h.Pair = [][3]string{{"ended", exitSide(d.Exit, 0), exitSide(d.Exit, 1)}}
	case d.Stats != nil:
		h.Stats = &htmlStats{Caption: statsCaption(d.Stats), Rows: statsRows(d.Stats)}
	case d.Instruction != nil:
		in := d.Instruction
		hi := &htmlInstr{
			Granularity: string(in.Granularity),
			Registers:   htmlRegs(r, in.Registers),
		}
		for _, row := range [][3]string{
			{"pc", sidePC(d, 0), sidePC(d, 1)},
			{"bytes", in.Bytes[0], in.Bytes[1]},
			{"hit", entryText(in.Entry[0]), entryText(in.Entry[1])},
			{"instruction", in.Disasm[0], in.Disasm[1]},
		} {
			if row[1] != "" || row[2] != "" {
				hi.Rows = append(hi.Rows, row)
			}
		}
		if len(in.CallPath[0]) > 0 || len(in.CallPath[1]) > 0 {
			hi.Paths = [2]string{pathString(in.CallPath[0]), pathString(in.CallPath[1])}
		}
		h.Instr = hi
	}
	return h
}

func htmlRegs(r *lockstep.Result, regs []compare.RegisterDiff) *htmlRegTable {
	if len(regs) == 0 {
		return nil
	}
	out := make([]htmlReg, 0, len(regs))
	hasBits := false
	for _, rg := range regs {
		hasBits = hasBits || len(rg.Bits) > 0
		a, b := digitDiff(rg.Values[0], rg.Values[1])
		out = append(out, htmlReg{
			Name: rg.Name, A: a, B: b,
			SymA: rg.Symbolic[0], SymB: rg.Symbolic[1],
			Bits: strings.Join(rg.Bits, " "),
		})
	}
	return &htmlRegTable{LabelA: sideLabel(r, 0), LabelB: sideLabel(r, 1), Regs: out, HasBits: hasBits}
}

// digitDiff splits two hex values into runs of equal and differing digits,
// aligned from the right so values of different widths still line up.
func digitDiff(a, b string) ([]htmlSpan, []htmlSpan) {
	pa, pb := strings.TrimPrefix(a, "0x"), strings.TrimPrefix(b, "0x")
	if len(pa) != len(pb) || pa == a || pb == b {
		return []htmlSpan{{a, a != b}}, []htmlSpan{{b, a != b}}
	}
	mark := make([]bool, len(pa))
	for i := range mark {
		mark[i] = pa[i] != pb[i]
	}
	return runs("0x", pa, mark), runs("0x", pb, mark)
}

func runs(prefix, s string, mark []bool) []htmlSpan {
	out := []htmlSpan{{Text: prefix}}
	for i := 0; i < len(s); i++ {
		last := &out[len(out)-1]
		if len(out) > 1 && last.Diff == mark[i] {
			last.Text += s[i : i+1]
			continue
		}
		if len(out) == 1 && !mark[i] {
			last.Text += s[i : i+1]
			continue
		}
		out = append(out, htmlSpan{Text: s[i : i+1], Diff: mark[i]})
	}
	return out
}

func htmlMemory(m *compare.MemoryDiff) *htmlMem {
	hm := &htmlMem{Header: memHeader(m)}
	for _, row := range m.Rows {
		hr := htmlHexRow{Offset: fmt.Sprintf("+%04x", row.Offset)}
		if row.Skipped > 0 {
			hr.Skipped = "… " + compare.Plural(row.Skipped, "equal row", "equal rows") + " …"
			hm.Rows = append(hm.Rows, hr)
			continue
		}
		a, b := hexBytes(row.A), hexBytes(row.B)
		hr.Equal = !rowDiffers(row)
		for i, x := range a {
			hr.A = append(hr.A, htmlSpan{x, diffAt(row, a, b, i)})
		}
		for i, x := range b {
			hr.B = append(hr.B, htmlSpan{x, diffAt(row, a, b, i)})
		}
		hr.AsciiA, hr.AsciiB = asciiOf(a), asciiOf(b)
		hm.Rows = append(hm.Rows, hr)
	}
	if l := memTruncated(m); l != "" {
		hm.Rows = append(hm.Rows, htmlHexRow{Skipped: l})
	}
	return hm
}

// htmlCallPath lays a unified diff out side by side: common lines on both
// sides, a run of "-" lines paired with the following run of "+" lines.
func htmlCallPath(c *compare.CallPathDiff, opt Options) *htmlPath {
	hp := &htmlPath{Source: callPathLabel(c.Source)}
	lines := pathLines(c)
	if len(lines) == 0 {
		for i := 0; i < max(len(c.A), len(c.B)); i++ {
			var row [2]htmlSpan
			if i < len(c.A) {
				row[0] = htmlSpan{locText(c.A[i].Location), true}
			}
			if i < len(c.B) {
				row[1] = htmlSpan{locText(c.B[i].Location), true}
			}
			hp.Rows = append(hp.Rows, row)
		}
	}
	var minus, plus []string
	flush := func() {
		for i := 0; i < max(len(minus), len(plus)); i++ {
			var row [2]htmlSpan
			if i < len(minus) {
				row[0] = htmlSpan{minus[i], true}
			}
			if i < len(plus) {
				row[1] = htmlSpan{plus[i], true}
			}
			hp.Rows = append(hp.Rows, row)
		}
		minus, plus = nil, nil
	}
	for _, pl := range lines {
		switch l := pl.text(); {
		case strings.HasPrefix(l, "---"), strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "@@"):
			continue
		case pl.Op == '-':
			if len(plus) > 0 {
				flush()
			}
			minus = append(minus, pl.side(0))
		case pl.Op == '+':
			plus = append(plus, pl.side(1))
		default:
			flush()
			hp.Rows = append(hp.Rows, [2]htmlSpan{{pl.side(0), false}, {pl.side(1), false}})
		}
	}
	flush()
	if opt.Verbose {
		for i, fs := range [2][]compare.Frame{c.A, c.B} {
			for k, f := range fs {
				for j, l := range frameLines(f, "    ") {
					if j == 0 {
						l = fmt.Sprintf("#%d %s", k, l)
					}
					hp.Frames[i] = append(hp.Frames[i], l)
				}
			}
		}
	}
	return hp
}

// htmlStateOf lays out what each side looked like at sy, or nil when sy
// has no state. Register values mark their differing digits; pc and
// backtrace lines are marked whole when they differ.
func htmlStateOf(r *lockstep.Result, sy lockstep.SyncResult) *htmlState {
	v, ok := buildState(sy)
	if !ok {
		return nil
	}
	hs := &htmlState{LabelA: sideLabel(r, 0), LabelB: sideLabel(r, 1)}
	whole := func(r stateRow, first bool) htmlStateRow {
		return htmlStateRow{Label: r.Label, A: []htmlSpan{{r.A, r.Differs && r.A != ""}}, B: []htmlSpan{{r.B, r.Differs && r.B != ""}}, First: first}
	}
	hs.Rows = append(hs.Rows, whole(v.PC, false))
	differ := 0
	for k, rg := range v.Registers {
		a, b := digitDiff(rg.A, rg.B)
		hs.Rows = append(hs.Rows, htmlStateRow{Label: rg.Label, A: a, B: b, Mono: true, First: k == 0})
		if rg.Differs {
			differ++
		}
	}
	for k, l := range v.Backtrace {
		hs.Rows = append(hs.Rows, whole(l, k == 0))
	}
	hs.Summary = "state: pc " + syncPC(sy)
	if n := len(v.Registers); n > 0 {
		hs.Summary += " · " + compare.Plural(n, "register", "registers")
		if differ > 0 {
			hs.Summary += fmt.Sprintf(" (%d differ)", differ)
		}
	}
	if n := len(sy.State[0].Backtrace); n > 0 || len(sy.State[1].Backtrace) > 0 {
		hs.Summary += " · backtrace"
	}
	return hs
}

// entryText is the "hit" row of a call found by function entry.
func entryText(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
