package calibrate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Calibration is what calibrating both sides of a scenario learned.
type Calibration struct {
	// Scenario is the calibrated scenario's name.
	Scenario string
	// Plan is how the sides were run, resolved: an exact count, or the
	// bounds of adaptive runs. Each side's Runs says how many it took.
	Plan  Plan
	Sides [2]SideCalibration
	// Noise is the union of both sides' learned noise, ready for
	// scenario.AddNoise or MergeNoise.
	Noise scenario.Noise
	// Icountable reports that determinism.icount could still be added to
	// the scenario: it has none, and no side runs under KVM.
	Icountable bool
}

// Settled reports whether every side settled: its last Plan.Settle runs
// found nothing new.
func (c *Calibration) Settled() bool { return c.Sides[0].Settled && c.Sides[1].Settled }

// FromTime reports whether some learned noise went away when its side ran
// under determinism.icount, that is, whether it comes from time.
func (c *Calibration) FromTime() bool {
	return c.Sides[0].Icount.FromTime() || c.Sides[1].Icount.FromTime()
}

// Advice returns what to do about what was found, one sentence each:
// IcountHint when noise comes from time, and UnstableHint (without icount
// when it cannot be added) when something could not be learned.
func (c *Calibration) Advice() []string {
	var out []string
	if c.Icountable && c.FromTime() {
		out = append(out, IcountHint)
	}
	if c.Unstable() {
		if c.Icountable {
			out = append(out, UnstableHint)
		} else {
			out = append(out, unstableHintNoIcount)
		}
	}
	return out
}

// Unstable reports whether some side diverged from itself in a way that
// cannot be learned as noise.
func (c *Calibration) Unstable() bool {
	return len(c.Sides[0].Unstable) > 0 || len(c.Sides[1].Unstable) > 0
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

// SideCalibration is what varied when one side ran against itself.
type SideCalibration struct {
	// Side is "a" or "b"; Label is the guest's label in the scenario.
	Side  string
	Label string
	// Runs is the number of runs done; Varied counts those with at least
	// one divergence.
	Runs   int
	Varied int
	// Stable is how many runs in a row at the end found nothing new: no
	// noise item, memory offset or unstable difference that an earlier run
	// had not found. Runs-Stable is the last run that found something new.
	Stable int
	// Settled reports that the last Plan.Settle runs found nothing new.
	// When it is false the runs ended (at Plan.MaxRuns, or at a fixed
	// Plan.Runs) while noise was still appearing or too recently: the
	// learned noise may be incomplete.
	Settled bool
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
	// Icount is what a run of the side under determinism.icount showed
	// about its noise; nil when it was not tried.
	Icount *IcountProbe
}

// MissBound is the share of runs above which a noise item that varied in
// none of the side's runs would, with 95% confidence, have shown up:
// 1-0.05^(1/Runs), assuming runs independent of each other. After 4 runs
// it is 53%, after 12 runs 22%: noise rarer than that may still be
// missing, settled or not.
func (s *SideCalibration) MissBound() float64 {
	if s.Runs == 0 {
		return 1
	}
	return 1 - math.Pow(0.05, 1/float64(s.Runs))
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
	// Runs counts the runs in which it varied; First is the run that
	// found it.
	Runs  int
	First int
}

// UnstableItem is a divergence between identical runs that cannot be
// learned as noise.
type UnstableItem struct {
	Kind    compare.Kind
	Sync    string
	Summary string
	// Runs counts the runs in which it occurred; First is the run that
	// found it.
	Runs  int
	First int
}

// SelfScenario returns a copy of sc in which both guests are side s,
// labelled "s#1" and "s#2", expected identical, with localisation off and
// no learned noise. Drives are opened with snapshot=on so the two copies do
// not contend for one image's write lock, and calibration changes no disk.
func SelfScenario(sc *scenario.Scenario, s int) *scenario.Scenario {
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

// DiffOffsets returns the offsets, from the range start, of the bytes
// marked as differing in md's hexdump rows, in increasing order.
func DiffOffsets(md *compare.MemoryDiff) []int { return md.Offsets() }

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
