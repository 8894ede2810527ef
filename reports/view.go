package reports

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// AutoColor reports whether text written to w should be coloured: w is a
// terminal, NO_COLOR is unset or empty and TERM is not "dumb".
func AutoColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// kindOrder is the order kinds are counted and listed in.
var kindOrder = []compare.Kind{
	compare.KindArrival, compare.KindExit, compare.KindInstruction, countCall, countStore,
	compare.KindRegister, compare.KindMemory, compare.KindCallPath, compare.KindStats,
}

// countCall and countStore count the instruction divergences found by
// function entry and by write watchpoint apart from those found
// instruction by instruction: "1 instruction, 2 call, 1 store".
const (
	countCall  compare.Kind = "call"
	countStore compare.Kind = "store"
)

// countKind is what a divergence counts as in the summary.
func countKind(d *compare.Divergence) compare.Kind {
	if d.Kind == compare.KindInstruction && d.Instruction != nil {
		switch d.Instruction.Granularity {
		case compare.ByFunction:
			return countCall
		case compare.ByWrite:
			return countStore
		}
	}
	return d.Kind
}

// instrBytes is the bytes column of side i of an instruction divergence:
// the instruction's bytes, or for a call found by function entry which
// hit of that function's breakpoint it is ("hit 3"), the count a sync
// point on the function needs to stop there.
func instrBytes(in *compare.InstructionDiff, i int) string {
	if in.Bytes[i] == "" && in.Entry[i] > 0 {
		return fmt.Sprintf("hit %d", in.Entry[i])
	}
	return in.Bytes[i]
}

// summary is what every human-readable renderer shows at the top.
type summary struct {
	Outcome string // IDENTICAL, DIVERGED or ERROR
	Verdict string // PASS or FAIL
	Expect  string
	First   *compare.Divergence
	// Localised is the first instruction divergence (the result of
	// localisation or a step window) when it is not First itself: the
	// root cause a reader wants next to the first symptom.
	Localised *compare.Divergence
	Counts    []kindCount
	Total     int // non-noise divergences
	Noise     int
	Reached   int // sync points reached by both sides
	SyncTotal int
}

type kindCount struct {
	Kind  compare.Kind
	Count int
}

func summarize(r *lockstep.Result) summary {
	s := summary{
		Outcome:   outcomeLabel(r.Outcome),
		Verdict:   "FAIL",
		Expect:    r.Expect,
		SyncTotal: len(r.Syncs),
	}
	if r.Passed {
		s.Verdict = "PASS"
	}
	if s.Expect == "" {
		s.Expect = "identical"
	}
	counts := map[compare.Kind]int{}
	for i := range r.Divergences {
		d := &r.Divergences[i]
		if d.Noise {
			s.Noise++
			continue
		}
		if s.First == nil {
			s.First = d
		}
		if s.Localised == nil && d.Kind == compare.KindInstruction && d != s.First {
			s.Localised = d
		}
		s.Total++
		counts[countKind(d)]++
	}
	for _, k := range kindOrder {
		if counts[k] > 0 {
			s.Counts = append(s.Counts, kindCount{k, counts[k]})
			delete(counts, k)
		}
	}
	unknown := slices.Sorted(maps.Keys(counts)) // kinds unknown to this version, if any
	for _, k := range unknown {
		s.Counts = append(s.Counts, kindCount{k, counts[k]})
	}
	for _, sy := range r.Syncs {
		if sy.Reached[0] && sy.Reached[1] {
			s.Reached++
		}
	}
	return s
}

func outcomeLabel(o lockstep.Outcome) string {
	switch o {
	case lockstep.OutcomeIdentical:
		return "IDENTICAL"
	case lockstep.OutcomeDiverged:
		return "DIVERGED"
	case lockstep.OutcomeError:
		return "ERROR"
	case "":
		return "UNKNOWN"
	}
	return strings.ToUpper(string(o))
}

// countsLine renders counts as "2 register, 1 memory".
func countsLine(s summary) string {
	if s.Total == 0 && s.Noise == 0 {
		return "no divergences"
	}
	var parts []string
	for _, c := range s.Counts {
		parts = append(parts, fmt.Sprintf("%d %s", c.Count, c.Kind))
	}
	out := compare.Plural(s.Total, "divergence", "divergences")
	if len(parts) > 0 {
		out += ": " + strings.Join(parts, ", ")
	}
	if s.Noise > 0 {
		out += fmt.Sprintf(" (+%d within noise)", s.Noise)
	}
	return out
}

// sideLine describes a side in one line: "tcg, qemu64, pc, demo-good.elf, QEMU 7.2.0".
func sideLine(sd lockstep.Side) string {
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	add(sd.Accel)
	add(sd.CPU)
	add(sd.Machine)
	add(baseName(sd.Kernel))
	add(attachedText(sd))
	if sd.Version != "" {
		add("QEMU " + sd.Version)
	}
	return strings.Join(parts, ", ")
}

// attachedText says that a side is a QEMU lockstep attached to (not
// launched), and how it was left: "attached (QMP /run/a.qmp), left
// running".
func attachedText(sd lockstep.Side) string {
	if sd.Attach == "" {
		return ""
	}
	s := "attached (QMP " + sd.Attach + ")"
	if sd.OnExit != "" {
		s += ", left " + sd.OnExit
	}
	return s
}

func sideLabel(r *lockstep.Result, i int) string {
	if l := r.Sides[i].Label; l != "" {
		return l
	}
	return [2]string{"a", "b"}[i]
}

// baseName returns the last element of a slash- or backslash-separated path.
func baseName(p string) string {
	if p == "" {
		return ""
	}
	p = strings.ReplaceAll(p, `\`, "/")
	return path.Base(p)
}

// syncTitle is "sync 1: checksum (hit 3)", the name used by every format.
func syncTitle(sy lockstep.SyncResult) string {
	hit := sy.Hit
	if hit == 0 {
		hit = 1
	}
	// Index is 0-based in the Result; people count sync points from 1.
	if sy.HitTotal > 0 {
		return fmt.Sprintf("sync %d: %s (hit %d from boot)", sy.Index+1, sy.Break, sy.HitTotal)
	}
	return fmt.Sprintf("sync %d: %s (hit %d)", sy.Index+1, sy.Break, hit)
}

// divTitle names where a divergence was found.
func divWhere(d *compare.Divergence) string {
	var b strings.Builder
	if d.Sync < 0 {
		b.WriteString("after the last sync point")
	} else {
		fmt.Fprintf(&b, "sync %d", d.Sync+1)
		if d.SyncName != "" {
			fmt.Fprintf(&b, " %s", d.SyncName)
		}
		if d.Hit > 1 {
			fmt.Fprintf(&b, " (hit %d)", d.Hit)
		}
	}
	if d.Step > 0 {
		fmt.Fprintf(&b, ", step %d", d.Step)
	}
	return b.String()
}

// pcPair renders both PCs: "checksum+0x12" when equal, else "a checksum+0x12, b checksum+0x16".
// A side without a PC (zero Location) reads "not reached", never "0x0".
func pcPair(pc [2]compare.Location) string {
	return pcPairOf(pc, func(i int) string { return "not reached" })
}

// divPC renders a divergence's PCs like pcPair; a side without a PC reads
// "exited" when the divergence says it exited, else "not reached".
func divPC(d *compare.Divergence) string {
	return pcPairOf(d.PC, func(i int) string { return noPC(d, i) })
}

// sidePC is one side's PC of a divergence, or why it has none.
func sidePC(d *compare.Divergence, i int) string {
	if d.PC[i].IsZero() {
		return noPC(d, i)
	}
	return locText(d.PC[i])
}

// noPC says why side i of d has no PC.
func noPC(d *compare.Divergence, i int) string {
	switch {
	case d.Arrival != nil && d.Arrival.State[i] == "exited",
		d.Exit != nil && d.Exit.State[i] == "exited":
		return "exited"
	case d.Exit != nil && (d.Exit.State[i] == "panicked" || d.Exit.State[i] == "reset"):
		return d.Exit.State[i]
	}
	return "not reached"
}

func pcPairOf(pc [2]compare.Location, none func(i int) string) string {
	if pc[0].IsZero() && pc[1].IsZero() {
		return ""
	}
	var s [2]string
	for i := range pc {
		if pc[i].IsZero() {
			s[i] = none(i)
		} else {
			s[i] = locText(pc[i])
		}
	}
	if s[0] == s[1] {
		return s[0]
	}
	return "a " + s[0] + ", b " + s[1]
}

// fmtDuration rounds d for people: microseconds below 1 ms, milliseconds
// below 10 s, tenths of a second above.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		d = d.Round(time.Microsecond)
	case d < 10*time.Second:
		d = d.Round(time.Millisecond)
	default:
		d = d.Round(100 * time.Millisecond)
	}
	return d.String()
}

// syncPC renders a sync point's PCs, saying which side never reached it.
func syncPC(sy lockstep.SyncResult) string {
	if sy.Reached[0] && sy.Reached[1] {
		return pcPair(sy.PC)
	}
	if !sy.Reached[0] && !sy.Reached[1] {
		return ""
	}
	side := func(i int) string {
		if sy.Reached[i] {
			return locText(sy.PC[i])
		}
		return "not reached"
	}
	return "a " + side(0) + ", b " + side(1)
}

// incompleteWhy says what an incomplete sync point could not compare
// ("stats not compared"), or "".
func incompleteWhy(sy lockstep.SyncResult) string {
	if sy.Status != lockstep.SyncIncomplete || len(sy.Uncompared) == 0 {
		return ""
	}
	return strings.Join(sy.Uncompared, ", ") + " not compared"
}

// firstLine is the one-line statement of the first divergence.
func firstLine(d *compare.Divergence) string {
	if d == nil {
		return "none"
	}
	s := fmt.Sprintf("%s: %s %s", divWhere(d), d.Kind, d.Summary)
	if countKind(d) != d.Kind {
		// A call or store: its summary starts "call #2: …" or "write #1 …".
		s = fmt.Sprintf("%s: %s", divWhere(d), d.Summary)
	}
	if summaryNamesWhere(d) {
		return s
	}
	if pc := divPC(d); pc != "" {
		s += " at " + pc
	}
	return s
}

// summaryNamesWhere reports whether d's Summary already says where each
// side was (arrival and exit divergences), so " at PC" would repeat it.
func summaryNamesWhere(d *compare.Divergence) bool {
	return d.Arrival != nil || d.Exit != nil || d.Kind == compare.KindArrival || d.Kind == compare.KindExit
}

// groupBySync returns the divergences of each sync index, plus those whose
// Sync matches no entry of r.Syncs (in found order).
func groupBySync(r *lockstep.Result) (map[int][]*compare.Divergence, []*compare.Divergence) {
	idx := map[int]bool{}
	for _, sy := range r.Syncs {
		idx[sy.Index] = true
	}
	by := map[int][]*compare.Divergence{}
	var other []*compare.Divergence
	for i := range r.Divergences {
		d := &r.Divergences[i]
		if d.Sync >= 0 && idx[d.Sync] {
			by[d.Sync] = append(by[d.Sync], d)
		} else {
			other = append(other, d)
		}
	}
	return by, other
}

// visible filters out noise divergences unless verbose.
func visible(ds []*compare.Divergence, verbose bool) (shown []*compare.Divergence, noise int) {
	for _, d := range ds {
		if d.Noise && !verbose {
			noise++
			continue
		}
		shown = append(shown, d)
	}
	return shown, noise
}

// arrivalSide is the state of one side of an arrival divergence: the
// engine's detail when it wrote one (it already names the state and where,
// e.g. "exited with status 7"), else the state and PC.
func arrivalSide(a *compare.ArrivalDiff, pc compare.Location, i int) string {
	if a.Detail[i] != "" {
		return a.Detail[i]
	}
	st := a.State[i]
	if st == "" {
		if a.Reached[i] {
			st = "reached"
		} else {
			st = "unknown"
		}
	}
	s := st
	switch st {
	case "exited":
		if a.ExitCode[i] != nil {
			s += fmt.Sprintf(" with code %d", *a.ExitCode[i])
		}
	default:
		if !pc.IsZero() {
			s += " at " + locText(pc)
		}
	}
	return s
}

// exitSide is how one side ended.
func exitSide(e *compare.ExitDiff, i int) string {
	s := e.State[i]
	if s == "" {
		s = "unknown"
	}
	if e.ExitCode[i] != nil {
		s += fmt.Sprintf(" with code %d", *e.ExitCode[i])
	}
	return s
}

// hexBytes splits a hex string into two-digit byte strings. A trailing odd
// digit is kept as its own element so nothing is hidden.
func hexBytes(s string) []string {
	out := make([]string, 0, (len(s)+1)/2)
	for i := 0; i < len(s); i += 2 {
		j := min(i+2, len(s))
		out = append(out, s[i:j])
	}
	return out
}

// diffAt reports whether byte i of a row is marked different. Missing Diff
// entries fall back to comparing the bytes.
func diffAt(row compare.HexRow, a, b []string, i int) bool {
	if i < len(row.Diff) {
		return row.Diff[i]
	}
	if i >= len(a) || i >= len(b) {
		return i < len(a) || i < len(b)
	}
	return !strings.EqualFold(a[i], b[i])
}

// rowDiffers reports whether any byte of the row differs.
func rowDiffers(row compare.HexRow) bool {
	a, b := hexBytes(row.A), hexBytes(row.B)
	n := max(len(a), len(b), len(row.Diff))
	for i := 0; i < n; i++ {
		if diffAt(row, a, b, i) {
			return true
		}
	}
	return false
}

// asciiOf renders printable bytes of a hex string, '.' otherwise.
func asciiOf(bs []string) string {
	var b strings.Builder
	for _, h := range bs {
		n, err := strconv.ParseUint(h, 16, 8)
		if len(h) != 2 || err != nil {
			b.WriteByte('?')
			continue
		}
		v := byte(n)
		if v >= 0x20 && v < 0x7f {
			b.WriteByte(v)
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// unifiedLines splits a unified diff into lines, dropping a final empty one.
func unifiedLines(u string) []string {
	u = strings.TrimRight(u, "\n")
	if u == "" {
		return nil
	}
	return strings.Split(u, "\n")
}

// memHeader describes a memory range: "results (virtual) at a 0x..., b 0x..., 64 bytes, 3 differ from +0x12".
func memHeader(m *compare.MemoryDiff) string {
	where := fmt.Sprintf("%#x", m.Addr[0])
	if m.Addr[0] != m.Addr[1] {
		where = fmt.Sprintf("a %#x, b %#x", m.Addr[0], m.Addr[1])
	}
	space := m.Space
	if space == "" {
		space = "virtual"
	}
	return fmt.Sprintf("%s (%s) at %s: %d bytes, %d differ, first at +%#x",
		m.Name, space, where, m.Length, m.DiffBytes, m.FirstOffset)
}

// memTruncated is the line that ends a dump cut at compare.MaxRows rows,
// or "".
func memTruncated(m *compare.MemoryDiff) string {
	if !m.Truncated {
		return ""
	}
	return fmt.Sprintf("… the dump stops after %d rows; the bytes differing beyond them are counted above …", compare.MaxRows)
}

func argsString(args map[string]string) string {
	keys := slices.Sorted(maps.Keys(args))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + args[k]
	}
	return strings.Join(parts, " ")
}

// callPathLabel names a call path's source and its order: a backtrace
// lists frames outermost first, a trace lists function entries in the order
// they were hit.
func callPathLabel(source string) string {
	switch source {
	case "trace":
		return "trace, in call order"
	case "", "backtrace":
		return "backtrace, outermost first"
	}
	return source
}

// pathString renders a call path in call order, outermost first, each
// frame with its source line and its inlined calls after it:
// "_start (boot.S:73) > kmain+0x12 (demo.c:160) > outl [inlined] (lib.h:35)".
func pathString(fs []compare.Frame) string {
	if len(fs) == 0 {
		return "(empty)"
	}
	var parts []string
	for _, f := range fs {
		for k, sf := range sourceFrames(f.Location, f.Location.String()) {
			if k == 0 && f.Uncertain {
				sf.name += "?"
			}
			parts = append(parts, sf.text())
		}
	}
	return strings.Join(parts, " > ")
}

// divGroup is a divergence shown on its own, or a run of register
// divergences at the same place shown as one table (Regs has them all).
type divGroup struct {
	D    *compare.Divergence
	Regs []compare.RegisterDiff
}

// Summary is the group's one-line statement.
func (g divGroup) Summary() string {
	if len(g.Regs) > 1 {
		names := make([]string, len(g.Regs))
		for i, r := range g.Regs {
			names[i] = r.Name
		}
		return fmt.Sprintf("%d registers differ: %s", len(g.Regs), strings.Join(names, ", "))
	}
	return g.D.Summary
}

// groupRegisters merges consecutive register divergences with the same
// sync point, hit, step, PCs and noise flag.
func groupRegisters(ds []*compare.Divergence) []divGroup {
	var out []divGroup
	for _, d := range ds {
		if n := len(out); n > 0 && d.Register != nil && sameRegisterGroup(out[n-1].D, d) {
			out[n-1].Regs = append(out[n-1].Regs, *d.Register)
			continue
		}
		g := divGroup{D: d}
		if d.Register != nil {
			g.Regs = []compare.RegisterDiff{*d.Register}
		}
		out = append(out, g)
	}
	return out
}

func sameRegisterGroup(d, e *compare.Divergence) bool {
	return d.Register != nil && e.Register != nil && e.Sync == d.Sync &&
		e.Hit == d.Hit && e.Step == d.Step && e.PC[0].SameCode(d.PC[0]) && e.PC[1].SameCode(d.PC[1]) && e.Noise == d.Noise
}

// localizationLine says how sync point sy's divergence was localised and,
// for a replay bisection, what it cost; "" when nothing is recorded.
func localizationLine(sy lockstep.SyncResult) string {
	l := sy.Localization
	if l == nil {
		return ""
	}
	var s string
	if l.Method != "" {
		s = "localised by " + l.Method
	} else {
		s = "not localised by instruction"
	}
	if l.Why != "" {
		s += " (" + l.Why + ")"
	}
	if l.Depth > 0 {
		s += fmt.Sprintf("; depth %d instructions", l.Depth)
	}
	if l.Passes > 0 {
		s += fmt.Sprintf(", %s, %s", compare.Plural(l.Passes, "replay pass", "replay passes"), compare.Plural(l.Probes, "probe", "probes"))
	}
	if l.Record > 0 {
		s += ", recording " + fmtDuration(l.Record)
	}
	if l.Replay > 0 {
		s += ", replay " + fmtDuration(l.Replay)
	}
	if l.ICount != [2]uint64{} {
		s += fmt.Sprintf("; instruction count a %d, b %d", l.ICount[0], l.ICount[1])
	}
	return s
}

// hasKind reports whether ds holds a divergence of kind k.
func hasKind(ds []*compare.Divergence, k compare.Kind) bool {
	for _, d := range ds {
		if d.Kind == k {
			return true
		}
	}
	return false
}

// syncTask is "a: cpu 0 swapper/0 (pid 1), task context; b: ..." naming
// the Linux task each side ran at sy, or "" when neither side's is known.
// Both sides running the same task are named once.
func syncTask(sy lockstep.SyncResult) string {
	a, b := sy.State[0].Task, sy.State[1].Task
	switch {
	case a == nil && b == nil:
		return ""
	case a != nil && b != nil && sameTask(a, b):
		return a.String() + " (both)"
	}
	side := func(t *compare.Task) string {
		if t == nil {
			return "unknown"
		}
		return t.String()
	}
	return "a: " + side(a) + "; b: " + side(b)
}

// sameTask reports whether two sides ran the same task: the same CPU,
// comm, pid and context (its address moves between builds).
func sameTask(a, b *compare.Task) bool {
	return a.CPU == b.CPU && a.Comm == b.Comm && a.PID == b.PID && a.Context == b.Context
}

// injectionLine describes a fault injected into one side: "b: return of
// alloc (call 3) set rax=0x0 at make_item+0x16 (alloc.c:63), on the way to
// sync 2 (report)".
func injectionLine(r *lockstep.Result, in lockstep.Injection) string {
	s := fmt.Sprintf("%s: %s set %s", in.Side, in.Where, in.Set)
	if pc := in.PC.String(); in.PC.Addr != 0 || in.PC.Symbol != "" {
		s += " at " + pc
	}
	name := ""
	if in.Sync >= 0 && in.Sync < len(r.Syncs) {
		name = fmt.Sprintf("sync %d (%s)", in.Sync+1, r.Syncs[in.Sync].Break)
	}
	switch {
	case name == "":
	case strings.HasPrefix(in.Where, "sync point"):
		s += ", after comparing " + name
	default:
		s += ", on the way to " + name
	}
	return s
}

// InjectedNote is the line that tells how to read divergences after an
// injection.
const injectedNote = "deliberate: divergences after it are its consequences"
