package calibrate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/arch"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Learner accumulates what one side's runs against itself found.
type Learner struct {
	sc    *scenario.Scenario
	side  int
	flags map[string][]compare.FlagBit
	out   SideCalibration
	// items and unstable index out.Items and out.Unstable by key.
	items    map[string]int
	unstable map[string]int
	notes    map[string]bool
}

// NewLearner returns a Learner for side s of sc, the scenario as written
// (not SelfScenario's copy): its memory ranges, ignore rules and
// architecture say how divergences are learned.
func NewLearner(sc *scenario.Scenario, s int) *Learner {
	l := &Learner{sc: sc, side: s, items: map[string]int{}, unstable: map[string]int{}, notes: map[string]bool{}}
	l.out.Side = scenario.SideNames[s]
	l.out.Label = sc.Guests[s].Label
	if a, err := arch.Lookup(sc.Guests[s].Arch); err == nil {
		l.flags = a.CompareFlags()
	}
	return l
}

// Learn folds in one run: its notes and its divergences. It reports
// whether the run found something new: a noise item, memory offsets or an
// unstable difference that no earlier run found.
func (l *Learner) Learn(notes []string, divs []compare.Divergence) bool {
	l.out.Runs++
	for _, n := range notes {
		if !l.notes[n] {
			l.notes[n] = true
			l.out.Notes = append(l.out.Notes, n)
		}
	}
	if len(divs) > 0 {
		l.out.Varied++
	}
	fresh := false
	seen := map[string]bool{}
	for _, d := range divs {
		items, unstable := l.classify(d)
		for _, it := range items {
			key := itemKey(it.Kind, it.Rule)
			if l.addItem(key, it) {
				fresh = true
			}
			if !seen[key] {
				seen[key] = true
				l.out.Items[l.items[key]].Runs++
			}
		}
		if unstable != nil {
			key := "u\x00" + string(unstable.Kind) + "\x00" + unstable.Sync + "\x00" + unstable.Summary
			i, ok := l.unstable[key]
			if !ok {
				fresh = true
				i = len(l.out.Unstable)
				l.unstable[key] = i
				unstable.First = l.out.Runs
				l.out.Unstable = append(l.out.Unstable, *unstable)
			}
			if !seen[key] {
				seen[key] = true
				l.out.Unstable[i].Runs++
			}
		}
	}
	if fresh {
		l.out.Stable = 0
	} else {
		l.out.Stable++
	}
	return fresh
}

// itemKey identifies a noise item across runs.
func itemKey(k compare.Kind, rule string) string { return string(k) + "\x00" + rule }

// addItem merges it into the item with key, or adds it, and reports
// whether that learned something new: a new item, new offsets, or a whole
// range where only some offsets were known.
func (l *Learner) addItem(key string, it NoiseItem) bool {
	i, ok := l.items[key]
	if !ok {
		l.items[key] = len(l.out.Items)
		it.First = l.out.Runs
		l.out.Items = append(l.out.Items, it)
		return true
	}
	prev := &l.out.Items[i]
	switch {
	case prev.Kind != compare.KindMemory || len(prev.Offsets) == 0:
		return false // already the whole register, function or range
	case len(it.Offsets) == 0:
		prev.Offsets = nil // the whole range
		return true
	}
	n := len(prev.Offsets)
	prev.Offsets = unionOffsets(prev.Offsets, it.Offsets)
	return len(prev.Offsets) > n
}

// classify turns one divergence into noise items, or an unstable item.
func (l *Learner) classify(d compare.Divergence) ([]NoiseItem, *UnstableItem) {
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
func (l *Learner) registerItems(d compare.Divergence) []NoiseItem {
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
func (l *Learner) ignoreAt(k int) []string {
	if k < 0 || k >= len(l.sc.Sync) {
		return l.sc.Compare.Ignore
	}
	return l.sc.Sync[k].Compare.Ignore
}

// memoryItem learns the differing bytes of a memory divergence as offsets
// from the start of the symbol or address the range names.
func (l *Learner) memoryItem(d compare.Divergence) (NoiseItem, bool) {
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
func (l *Learner) wordSize() int {
	if a, err := arch.Lookup(l.sc.Guests[0].Arch); err == nil && a.PtrSize > 0 {
		return a.PtrSize
	}
	return 8
}

// rangeOf finds the compared memory range of sync point k that a
// MemoryDiff name ("sym", "sym+0x10" or "0x1000") stands for.
func (l *Learner) rangeOf(k int, name string) (scenario.MemoryRange, bool) {
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

// Result finishes the side: items sorted as found, offsets sorted, and the
// side's noise.
func (l *Learner) Result() SideCalibration {
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
