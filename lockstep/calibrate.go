package lockstep

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/arch"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// DefaultCalibrationRuns is how many times Calibrate runs each side against
// itself when CalibrateOptions.Runs is zero.
const DefaultCalibrationRuns = 3

// UnstableHint is the advice given for divergences that calibration cannot
// learn as noise.
const UnstableHint = "identical runs diverged in a way that cannot be ignored; add determinism " +
	"(determinism.icount: \"shift=0,sleep=off\" on TCG, determinism.sstep: [noirq, notimer], determinism.rtc: clock=vm)"

// CalibrateOptions tune Calibrate. The zero value runs each side
// DefaultCalibrationRuns times.
type CalibrateOptions struct {
	// Runs is how many times each side is run against itself; 0 means
	// DefaultCalibrationRuns.
	Runs int
	// Options are passed to every Run; NoNoise is forced on.
	Options
	// OnRun, when set, is called after each run with the side index (0 for
	// a, 1 for b), the 1-based run number and its result.
	OnRun func(side, run int, res *Result)
}

// Calibration is what Calibrate learned.
type Calibration struct {
	// Scenario is the calibrated scenario's name.
	Scenario string
	// Runs is the number of runs per side.
	Runs  int
	Sides [2]SideCalibration
	// Noise is the union of both sides' learned noise, ready for
	// scenario.AddNoise or MergeNoise.
	Noise scenario.Noise
}

// Unstable reports whether some side diverged from itself in a way that
// cannot be learned as noise.
func (c *Calibration) Unstable() bool {
	return len(c.Sides[0].Unstable) > 0 || len(c.Sides[1].Unstable) > 0
}

// SideCalibration is what varied when one side ran against itself.
type SideCalibration struct {
	// Side is "a" or "b"; Label is the guest's label in the scenario.
	Side  string
	Label string
	// Runs is the number of runs done; Varied counts those with at least
	// one divergence.
	Runs   int
	Varied int
	// Items are the learnable differences, in the order first seen.
	Items []NoiseItem
	// Unstable are the differences that cannot be learned (arrival, exit,
	// instruction, or memory readable on one side only).
	Unstable []UnstableItem
	// Noise is what this side alone learned.
	Noise scenario.Noise
	// Notes are the distinct notes of the runs (e.g. determinism aids
	// that were not applied).
	Notes []string
}

// NoiseItem is one thing that varied between identical runs.
type NoiseItem struct {
	// Kind is compare.KindRegister, KindMemory or KindCallPath.
	Kind compare.Kind
	// Rule is the ignore rule: "rdi", "eflags.ZF", a symbol (memory), an
	// address ("0x1000", memory) or a function name (call path).
	Rule string
	// Offsets are the varying byte offsets of a memory item, from the
	// symbol's or address's start; nil means the whole range.
	Offsets []uint64
	// Sync is the break expression of the sync point it was first seen at.
	Sync string
	// Runs counts the runs in which it varied.
	Runs int
}

// UnstableItem is a divergence between identical runs that cannot be
// learned as noise.
type UnstableItem struct {
	Kind    compare.Kind
	Sync    string
	Summary string
	// Runs counts the runs in which it occurred.
	Runs int
}

// Calibrate runs each side of sc against itself opts.Runs times with noise
// disabled and learns what varies between identical runs: registers (whole,
// or single named flag bits), memory bytes and call-path functions. Arrival,
// exit and instruction divergences between identical runs cannot be
// ignored; they are returned as Unstable items. The error wraps
// ErrInfrastructure or is a *ScenarioError, as for Run.
func Calibrate(ctx context.Context, sc *scenario.Scenario, opts CalibrateOptions) (*Calibration, error) {
	runs := opts.Runs
	if runs == 0 {
		runs = DefaultCalibrationRuns
	}
	if runs < 0 {
		return nil, &ScenarioError{Err: fmt.Errorf("calibrate: runs must be positive, not %d", runs)}
	}
	ropts := opts.Options
	ropts.NoNoise = true
	cal := &Calibration{Scenario: sc.Name, Runs: runs}
	for s := range 2 {
		l := newLearner(sc, s)
		self := selfScenario(sc, s)
		for j := range runs {
			if err := ctx.Err(); err != nil {
				return cal, guest.Infraf("calibrate side %s run %d: %w", scenario.SideNames[s], j+1, context.Cause(ctx))
			}
			res, err := Run(ctx, self, ropts)
			if err != nil {
				return cal, fmt.Errorf("calibrate side %s run %d: %w", scenario.SideNames[s], j+1, err)
			}
			l.learn(res)
			if opts.OnRun != nil {
				opts.OnRun(s, j+1, res)
			}
		}
		cal.Sides[s] = l.result()
	}
	cal.Noise = MergeNoise(cal.Sides[0].Noise, cal.Sides[1].Noise)
	return cal, nil
}

// selfScenario returns a copy of sc in which both guests are side s,
// labelled "s#1" and "s#2", expected identical, with localisation off and
// no learned noise. Drives are opened with snapshot=on so the two copies do
// not contend for one image's write lock, and calibration changes no disk.
func selfScenario(sc *scenario.Scenario, s int) *scenario.Scenario {
	c := *sc
	name := scenario.SideNames[s]
	for i := range 2 {
		g := sc.Guests[s]
		g.Side = scenario.SideNames[i]
		g.Label = fmt.Sprintf("%s#%d", name, i+1)
		g.Drives = slices.Clone(g.Drives)
		for k := range g.Drives {
			g.Drives[k].Snapshot = true
		}
		c.Guests[i] = g
	}
	c.Name = fmt.Sprintf("%s (calibrate %s)", sc.Name, name)
	c.Expect = scenario.ExpectIdentical
	c.Localize.Enabled = false
	c.Noise = scenario.Noise{}
	return &c
}

// learner accumulates what one side's runs found.
type learner struct {
	sc    *scenario.Scenario
	side  int
	flags map[string][]compare.FlagBit
	out   SideCalibration
	// items and unstable index out.Items and out.Unstable by key.
	items    map[string]int
	unstable map[string]int
	notes    map[string]bool
}

func newLearner(sc *scenario.Scenario, s int) *learner {
	l := &learner{sc: sc, side: s, items: map[string]int{}, unstable: map[string]int{}, notes: map[string]bool{}}
	l.out.Side = scenario.SideNames[s]
	l.out.Label = sc.Guests[s].Label
	if a, err := arch.Lookup(sc.Guests[s].Arch); err == nil {
		l.flags = a.CompareFlags()
	}
	return l
}

// learn folds one run's divergences in.
func (l *learner) learn(res *Result) {
	l.out.Runs++
	for _, n := range res.Notes {
		if !l.notes[n] {
			l.notes[n] = true
			l.out.Notes = append(l.out.Notes, n)
		}
	}
	if len(res.Divergences) > 0 {
		l.out.Varied++
	}
	seen := map[string]bool{}
	for _, d := range res.Divergences {
		items, unstable := l.classify(d)
		for _, it := range items {
			key := string(it.Kind) + "\x00" + it.Rule
			i, ok := l.items[key]
			if !ok {
				i = len(l.out.Items)
				l.items[key] = i
				l.out.Items = append(l.out.Items, it)
			} else if prev := &l.out.Items[i]; len(prev.Offsets) == 0 || len(it.Offsets) == 0 {
				prev.Offsets = nil // the whole range
			} else {
				prev.Offsets = unionOffsets(prev.Offsets, it.Offsets)
			}
			if !seen[key] {
				seen[key] = true
				l.out.Items[i].Runs++
			}
		}
		if unstable != nil {
			key := "u\x00" + string(unstable.Kind) + "\x00" + unstable.Sync + "\x00" + unstable.Summary
			i, ok := l.unstable[key]
			if !ok {
				i = len(l.out.Unstable)
				l.unstable[key] = i
				l.out.Unstable = append(l.out.Unstable, *unstable)
			}
			if !seen[key] {
				seen[key] = true
				l.out.Unstable[i].Runs++
			}
		}
	}
}

// classify turns one divergence into noise items, or an unstable item.
func (l *learner) classify(d compare.Divergence) ([]NoiseItem, *UnstableItem) {
	unstable := &UnstableItem{Kind: d.Kind, Sync: d.SyncName, Summary: d.Summary}
	switch d.Kind {
	case compare.KindRegister:
		if d.Register == nil {
			return nil, unstable
		}
		return l.registerItems(d), nil
	case compare.KindMemory:
		if d.Memory == nil || len(d.Memory.Rows) == 0 {
			// Readable on one side only: nothing to learn offsets from.
			return nil, unstable
		}
		it, ok := l.memoryItem(d)
		if !ok {
			return nil, unstable
		}
		return []NoiseItem{it}, nil
	case compare.KindCallPath:
		if d.CallPath == nil {
			return nil, unstable
		}
		var items []NoiseItem
		for _, fn := range CallPathFunctions(d.CallPath) {
			items = append(items, NoiseItem{Kind: compare.KindCallPath, Rule: fn, Sync: d.SyncName})
		}
		if len(items) == 0 {
			return nil, unstable
		}
		return items, nil
	}
	return nil, unstable
}

// registerItems learns a register: its differing named flag bits when they
// account for every differing bit, otherwise the whole register.
func (l *learner) registerItems(d compare.Divergence) []NoiseItem {
	rd := *d.Register
	if len(rd.Bits) > 0 {
		rules := make([]string, len(rd.Bits))
		for i, b := range rd.Bits {
			rules[i] = rd.Name + "." + b
		}
		opt := compare.RegOptions{Noise: rules, Flags: l.flags, Ignore: l.ignoreAt(d.Sync)}
		if opt.IsNoise(rd) {
			items := make([]NoiseItem, len(rules))
			for i, r := range rules {
				items[i] = NoiseItem{Kind: compare.KindRegister, Rule: r, Sync: d.SyncName}
			}
			return items
		}
	}
	return []NoiseItem{{Kind: compare.KindRegister, Rule: rd.Name, Sync: d.SyncName}}
}

// ignoreAt returns the ignore rules of sync point k.
func (l *learner) ignoreAt(k int) []string {
	if k < 0 || k >= len(l.sc.Sync) {
		return l.sc.Compare.Ignore
	}
	return l.sc.Sync[k].Compare.Ignore
}

// memoryItem learns the differing bytes of a memory divergence as offsets
// from the start of the symbol or address the range names.
func (l *learner) memoryItem(d compare.Divergence) (NoiseItem, bool) {
	md := d.Memory
	it := NoiseItem{Kind: compare.KindMemory, Sync: d.SyncName}
	base, ok := l.rangeOf(d.Sync, md.Name)
	if !ok {
		return it, false
	}
	if base.HasAddress {
		it.Rule = fmt.Sprintf("%#x", base.Address)
	} else {
		it.Rule = base.Symbol
	}
	offs := DiffOffsets(md)
	if len(offs) < md.DiffBytes || len(offs) == 0 {
		// Rows do not account for every differing byte: learn the whole range.
		return it, true
	}
	// Learn whole aligned words: a counter or timestamp varies as a word,
	// and its high bytes change only now and then (the TSC's byte 4 every
	// 2^32 cycles), so bytes seen to vary stand for their word.
	word := uint64(l.wordSize())
	end := base.Offset + uint64(md.Length)
	if md.Length == 0 {
		end = ^uint64(0) // length unknown: do not clip
	}
	seen := map[uint64]bool{}
	for _, o := range offs {
		w := (base.Offset + uint64(o)) &^ (word - 1)
		for b := max(w, base.Offset); b < w+word && b < end; b++ {
			if !seen[b] {
				seen[b] = true
				it.Offsets = append(it.Offsets, b)
			}
		}
	}
	slices.Sort(it.Offsets)
	return it, true
}

// wordSize is the guests' pointer size (8 when the architecture is not
// known).
func (l *learner) wordSize() int {
	if a, err := arch.Lookup(l.sc.Guests[0].Arch); err == nil && a.PtrSize > 0 {
		return a.PtrSize
	}
	return 8
}

// rangeOf finds the compared memory range of sync point k that a
// MemoryDiff name ("sym", "sym+0x10" or "0x1000") stands for.
func (l *learner) rangeOf(k int, name string) (scenario.MemoryRange, bool) {
	var ranges []scenario.MemoryRange
	if k >= 0 && k < len(l.sc.Sync) {
		ranges = l.sc.Sync[k].Compare.Memory
	} else {
		ranges = l.sc.Compare.Memory
	}
	for _, m := range ranges {
		// The engine names an address range by its address, whatever
		// its offset.
		if (m.HasAddress && fmt.Sprintf("%#x", m.Address) == name) || (!m.HasAddress && rangeName(m) == name) {
			return m, true
		}
	}
	// Not in the scenario (e.g. a range added by the engine): parse the name.
	return parseRangeName(name)
}

// parseRangeName parses a MemoryDiff name as the engine writes it: a symbol,
// "symbol+0xOFF" or "0xADDR".
func parseRangeName(name string) (scenario.MemoryRange, bool) {
	if rest, ok := strings.CutPrefix(name, "0x"); ok {
		a, err := strconv.ParseUint(rest, 16, 64)
		if err != nil {
			return scenario.MemoryRange{}, false
		}
		return scenario.MemoryRange{Address: a, HasAddress: true}, true
	}
	sym, off, found := strings.Cut(name, "+")
	if sym == "" || strings.ContainsAny(sym, " \t\n") {
		return scenario.MemoryRange{}, false
	}
	m := scenario.MemoryRange{Symbol: sym}
	if found {
		rest, ok := strings.CutPrefix(off, "0x")
		if !ok {
			return scenario.MemoryRange{}, false
		}
		o, err := strconv.ParseUint(rest, 16, 64)
		if err != nil {
			return scenario.MemoryRange{}, false
		}
		m.Offset = o
	}
	return m, true
}

// rangeName is the MemoryDiff name of m, the inverse of parseRangeName.
func rangeName(m scenario.MemoryRange) string {
	switch {
	case m.HasAddress:
		return fmt.Sprintf("%#x", m.Address)
	case m.Offset > 0:
		return fmt.Sprintf("%s+%#x", m.Symbol, m.Offset)
	}
	return m.Symbol
}

// result finishes the side: items sorted as found, offsets sorted, and the
// side's noise.
func (l *learner) result() SideCalibration {
	out := l.out
	var n scenario.Noise
	for _, it := range out.Items {
		switch it.Kind {
		case compare.KindRegister:
			n.Registers = append(n.Registers, it.Rule)
		case compare.KindCallPath:
			n.CallPath = append(n.CallPath, it.Rule)
		case compare.KindMemory:
			nm := scenario.NoiseMemory{Offsets: slices.Clone(it.Offsets)}
			if strings.HasPrefix(it.Rule, "0x") {
				a, err := strconv.ParseUint(it.Rule[2:], 16, 64)
				if err != nil {
					continue
				}
				nm.Address, nm.HasAddress = a, true
			} else {
				nm.Symbol = it.Rule
			}
			n.Memory = append(n.Memory, nm)
		}
	}
	out.Noise = n
	return out
}

// DiffOffsets returns the offsets, from the range start, of the bytes
// marked as differing in md's hexdump rows, in increasing order.
func DiffOffsets(md *compare.MemoryDiff) []int {
	var offs []int
	for _, row := range md.Rows {
		if row.Skipped > 0 {
			continue
		}
		for i, d := range row.Diff {
			if d {
				offs = append(offs, row.Offset+i)
			}
		}
	}
	slices.Sort(offs)
	return slices.Compact(offs)
}

// CallPathFunctions returns the functions present on one side only of a
// call-path diff, each once, in order.
func CallPathFunctions(d *compare.CallPathDiff) []string { return engine.OneSided(d) }

// MergeNoise returns the union of a and b: registers and call-path functions
// once each in order of first appearance; memory entries for the same
// symbol (or address) merged, with offsets unioned, or the whole symbol
// when either entry has no offsets. Like scenario.AddNoise.
func MergeNoise(a, b scenario.Noise) scenario.Noise {
	var out scenario.Noise
	for _, r := range slices.Concat(a.Registers, b.Registers) {
		if !slices.ContainsFunc(out.Registers, func(s string) bool { return strings.EqualFold(s, r) }) {
			out.Registers = append(out.Registers, r)
		}
	}
	for _, f := range slices.Concat(a.CallPath, b.CallPath) {
		if !slices.Contains(out.CallPath, f) {
			out.CallPath = append(out.CallPath, f)
		}
	}
	for _, m := range slices.Concat(a.Memory, b.Memory) {
		i := slices.IndexFunc(out.Memory, func(e scenario.NoiseMemory) bool {
			return e.HasAddress == m.HasAddress && e.Symbol == m.Symbol && e.Address == m.Address
		})
		if i < 0 {
			m.Offsets = slices.Clone(m.Offsets)
			out.Memory = append(out.Memory, m)
			continue
		}
		if len(out.Memory[i].Offsets) == 0 || len(m.Offsets) == 0 {
			out.Memory[i].Offsets = nil
			continue
		}
		out.Memory[i].Offsets = unionOffsets(out.Memory[i].Offsets, m.Offsets)
	}
	return out
}

// unionOffsets returns the sorted union of two offset lists.
func unionOffsets(a, b []uint64) []uint64 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// ApplyCalibration merges c's learned noise into sc.Noise in memory, so that
// a following Run marks divergences within it as noise.
func ApplyCalibration(sc *scenario.Scenario, c *Calibration) {
	sc.Noise = MergeNoise(sc.Noise, c.Noise)
}

// ErrUnstable is wrapped by (*Calibration).Err when some side diverged from
// itself in a way that cannot be learned as noise.
var ErrUnstable = errors.New("calibration found unstable divergences")

// Err returns an error wrapping ErrUnstable that lists the unstable items,
// or nil.
func (c *Calibration) Err() error {
	if !c.Unstable() {
		return nil
	}
	var parts []string
	for _, s := range c.Sides {
		for _, u := range s.Unstable {
			parts = append(parts, fmt.Sprintf("side %s: %s at %s (%d/%d runs)", s.Side, u.Kind, u.Sync, u.Runs, s.Runs))
		}
	}
	return fmt.Errorf("%w: %s", ErrUnstable, strings.Join(parts, "; "))
}
