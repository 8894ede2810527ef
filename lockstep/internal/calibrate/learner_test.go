package calibrate

import (
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestClassify checks how each kind of divergence between identical runs is
// learned: registers whole or by named flag bit, memory by byte offset from
// the symbol or address, call paths by function; arrival, exit, instruction
// and one-sided memory divergences are unstable.
func TestClassify(t *testing.T) {
	sc := &scenario.Scenario{
		Guests: [2]scenario.Guest{{Arch: "x86_64", Label: "x"}, {Arch: "x86_64"}},
		Sync: []scenario.SyncPoint{{Break: "f", Compare: scenario.CompareSpec{
			Ignore: []string{"eflags.RF"},
			Memory: []scenario.MemoryRange{
				{Symbol: "buf"},
				{Symbol: "tbl", Offset: 0x10},
				{Address: 0x1000, HasAddress: true, Offset: 8, Length: 16},
			}}}},
	}
	row := func(off int, diff ...int) compare.HexRow {
		r := compare.HexRow{Offset: off, Diff: make([]bool, 16)}
		for _, d := range diff {
			r.Diff[d] = true
		}
		return r
	}
	reg := func(name, a, b string, bits ...string) compare.Divergence {
		return compare.Divergence{Kind: compare.KindRegister, SyncName: "f",
			Register: &compare.RegisterDiff{Name: name, Values: [2]string{a, b}, Bits: bits}}
	}
	mem := func(name string, n int, rows ...compare.HexRow) compare.Divergence {
		return compare.Divergence{Kind: compare.KindMemory, SyncName: "f",
			Memory: &compare.MemoryDiff{Name: name, DiffBytes: n, Rows: rows}}
	}
	tests := []struct {
		name     string
		d        compare.Divergence
		rules    []string
		offsets  []uint64
		unstable bool
	}{
		{name: "whole register", d: reg("rdi", "0x1", "0x2"), rules: []string{"rdi"}},
		{name: "named flag bits", d: reg("eflags", "0x0", "0x41", "ZF", "CF"), rules: []string{"eflags.ZF", "eflags.CF"}},
		{name: "flag bit and ignored bit", d: reg("eflags", "0x0", "0x10040", "ZF"), rules: []string{"eflags.ZF"}},
		{name: "flag bit and unnamed bit", d: reg("eflags", "0x0", "0x40000040", "ZF"), rules: []string{"eflags"}},
		{name: "memory bytes", d: mem("buf", 3, row(0, 1, 2), compare.HexRow{Offset: 16, Skipped: 4}, row(80, 15)),
			rules: []string{"buf"}, offsets: seq(0, 8, 88, 96)},
		{name: "memory with offset", d: mem("tbl+0x10", 1, row(0, 3)), rules: []string{"tbl"}, offsets: seq(0x10, 0x18)},
		{name: "address range", d: mem("0x1000", 1, row(0, 0)), rules: []string{"0x1000"}, offsets: seq(8, 16)},
		{name: "rows short of diff bytes", d: mem("buf", 5, row(0, 1)), rules: []string{"buf"}},
		{name: "memory on one side only", d: mem("buf", 0), unstable: true},
		{name: "call path", d: compare.Divergence{Kind: compare.KindCallPath, SyncName: "f",
			CallPath: &compare.CallPathDiff{Unified: " main\n-tick\n+tock\n-tick\n work", OnlyA: []string{"tick", "tick"}, OnlyB: []string{"tock"}}}, rules: []string{"tick", "tock"}},
		{name: "arrival", d: compare.Divergence{Kind: compare.KindArrival, SyncName: "f"}, unstable: true},
		{name: "exit", d: compare.Divergence{Kind: compare.KindExit}, unstable: true},
		{name: "instruction", d: compare.Divergence{Kind: compare.KindInstruction, SyncName: "f"}, unstable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLearner(sc, 0)
			items, u := l.classify(tt.d)
			if (u != nil) != tt.unstable {
				t.Fatalf("unstable %v, want %v", u, tt.unstable)
			}
			var rules []string
			for _, it := range items {
				rules = append(rules, it.Rule)
				if it.Sync != tt.d.SyncName || it.Kind != tt.d.Kind {
					t.Errorf("item %+v: want sync %q kind %s", it, tt.d.SyncName, tt.d.Kind)
				}
			}
			if !slices.Equal(rules, tt.rules) {
				t.Errorf("rules %v, want %v", rules, tt.rules)
			}
			if len(items) == 1 && !slices.Equal(items[0].Offsets, tt.offsets) {
				t.Errorf("offsets %v, want %v", items[0].Offsets, tt.offsets)
			}
		})
	}
}

// TestLearnCountsRuns folds synthetic runs into a Learner: each item counts
// the runs it varied in, offsets (whole words) union, and a whole-range
// observation wins.
func TestLearnCountsRuns(t *testing.T) {
	sc := &scenario.Scenario{Guests: [2]scenario.Guest{{Arch: "x86_64", Label: "good"}, {Arch: "x86_64"}},
		Sync: []scenario.SyncPoint{{Break: "f", Compare: scenario.CompareSpec{Memory: []scenario.MemoryRange{{Symbol: "a"}, {Symbol: "b"}}}}}}
	mem := func(name string, n int, diff ...int) compare.Divergence {
		r := compare.HexRow{Diff: make([]bool, 16)}
		for _, d := range diff {
			r.Diff[d] = true
		}
		var rows []compare.HexRow
		if len(diff) > 0 {
			rows = []compare.HexRow{r}
		}
		return compare.Divergence{Kind: compare.KindMemory, SyncName: "f", Memory: &compare.MemoryDiff{Name: name, DiffBytes: n, Rows: rows}}
	}
	rdi := compare.Divergence{Kind: compare.KindRegister, SyncName: "f", Register: &compare.RegisterDiff{Name: "rdi", Values: [2]string{"0x1", "0x2"}}}
	arrival := compare.Divergence{Kind: compare.KindArrival, SyncName: "f", Summary: "b never got there"}
	l := NewLearner(sc, 1)
	var fresh []bool
	fresh = append(fresh, l.Learn(nil, []compare.Divergence{rdi, mem("a", 1, 0), mem("b", 1, 2), rdi}))
	fresh = append(fresh, l.Learn([]string{"n1"}, []compare.Divergence{mem("a", 2, 4, 5), mem("b", 9, 3)}))
	fresh = append(fresh, l.Learn([]string{"n1"}, nil))
	fresh = append(fresh, l.Learn(nil, []compare.Divergence{arrival, arrival}))
	fresh = append(fresh, l.Learn(nil, []compare.Divergence{rdi, mem("b", 1, 9), arrival}))
	if want := []bool{true, true, false, true, false}; !slices.Equal(fresh, want) {
		t.Errorf("Learn reported new %v, want %v", fresh, want)
	}
	got := l.Result()
	if got.Stable != 1 || got.Items[0].First != 1 || got.Unstable[0].First != 4 {
		t.Errorf("stable %d, rdi first in %d, arrival first in %d; want 1 1 4", got.Stable, got.Items[0].First, got.Unstable[0].First)
	}
	if got.Side != "b" || got.Runs != 5 || got.Varied != 4 || !slices.Equal(got.Notes, []string{"n1"}) {
		t.Errorf("side %s runs %d varied %d notes %v, want b 5 4 [n1]", got.Side, got.Runs, got.Varied, got.Notes)
	}
	if len(got.Unstable) != 1 || got.Unstable[0].Runs != 2 {
		t.Errorf("unstable %+v, want one arrival in 2 runs", got.Unstable)
	}
	want := scenario.Noise{Registers: []string{"rdi"}, Memory: []scenario.NoiseMemory{
		{Symbol: "a", Offsets: seq(0, 8)}, {Symbol: "b"}}}
	if !noiseEqual(got.Noise, want) {
		t.Errorf("noise %+v, want %+v", got.Noise, want)
	}
	if got.Items[0].Runs != 2 || got.Items[1].Runs != 2 {
		t.Errorf("item runs %d %d, want 2 2", got.Items[0].Runs, got.Items[1].Runs)
	}
}

// seq returns the offsets [lo, hi) of each pair of bounds.
func seq(bounds ...uint64) []uint64 {
	var out []uint64
	for i := 0; i+1 < len(bounds); i += 2 {
		for o := bounds[i]; o < bounds[i+1]; o++ {
			out = append(out, o)
		}
	}
	return out
}
