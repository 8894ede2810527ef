package lockstep

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// loadTSC builds the TSC guests if needed and loads a tsc*.yaml scenario.
func loadTSC(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "tsc")
	qemutest.Guest(t, "tsc-bad")
	sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func runTSC(t *testing.T, sc *scenario.Scenario) *Result {
	t.Helper()
	res, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	noQEMULeft(t)
	return res
}

func noQEMULeft(t *testing.T) {
	t.Helper()
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}

// divergenceNames returns "kind:name" for each divergence, split by whether
// it was marked as noise.
func divergenceNames(res *Result) (real, noise []string) {
	for _, d := range res.Divergences {
		n := string(d.Kind)
		switch {
		case d.Register != nil:
			n += ":" + d.Register.Name
		case d.Memory != nil:
			n += ":" + d.Memory.Name
		}
		if d.Noise {
			noise = append(noise, n)
		} else {
			real = append(real, n)
		}
	}
	slices.Sort(real)
	slices.Sort(noise)
	return real, noise
}

func memoryNoiseFor(n scenario.Noise, sym string) (scenario.NoiseMemory, bool) {
	for _, m := range n.Memory {
		if m.Symbol == sym {
			return m, true
		}
	}
	return scenario.NoiseMemory{}, false
}

// TestCalibrateTSC is the acceptance test of calibration on the TSC guest:
// a false divergence without calibration, none with it, a real regression
// that still fails, and a --write round trip.
func TestCalibrateTSC(t *testing.T) {
	sc := loadTSC(t, "tsc.yaml")

	t.Run("uncalibrated diverges", func(t *testing.T) {
		res := runTSC(t, sc)
		if res.Outcome != OutcomeDiverged || res.Passed {
			t.Fatalf("outcome %s passed=%v, want diverged and failed", res.Outcome, res.Passed)
		}
		real, noise := divergenceNames(res)
		want := []string{"memory:tsc_sample", "register:rdi"}
		if !slices.Equal(real, want) || len(noise) != 0 {
			t.Errorf("divergences %v (noise %v), want %v and no noise", real, noise, want)
		}
	})

	var runs []int
	cal, err := Calibrate(context.Background(), sc, CalibrateOptions{Runs: 2,
		OnRun: func(side, run int, res *Result) { runs = append(runs, side*10+run) }})
	if err != nil {
		t.Fatalf("calibrate: %v", err)
	}
	noQEMULeft(t)

	t.Run("learns rdi and tsc_sample", func(t *testing.T) {
		if want := []int{1, 2, 11, 12}; !slices.Equal(runs, want) {
			t.Errorf("OnRun calls %v, want %v", runs, want)
		}
		if cal.Unstable() || cal.Err() != nil {
			t.Errorf("unstable: %v", cal.Err())
		}
		for i, sd := range cal.Sides {
			if sd.Side != scenario.SideNames[i] || sd.Runs != 2 || sd.Varied != 2 {
				t.Errorf("side %d: %s runs %d varied %d, want %s 2 2", i, sd.Side, sd.Runs, sd.Varied, scenario.SideNames[i])
			}
			for _, it := range sd.Items {
				if it.Runs != 2 || it.Sync != "tsc_done" {
					t.Errorf("side %s item %s %s: %d runs at %s, want 2 at tsc_done", sd.Side, it.Kind, it.Rule, it.Runs, it.Sync)
				}
			}
		}
		if !slices.Equal(cal.Noise.Registers, []string{"rdi"}) {
			t.Errorf("registers %v, want [rdi] (rsi is deterministic)", cal.Noise.Registers)
		}
		if len(cal.Noise.CallPath) != 0 {
			t.Errorf("callpath %v, want none", cal.Noise.CallPath)
		}
		m, ok := memoryNoiseFor(cal.Noise, "tsc_sample")
		if !ok {
			t.Fatalf("no tsc_sample in %+v", cal.Noise.Memory)
		}
		// The low half of the TSC always differs between runs; the high
		// half only when a run takes 2^32 cycles to get there.
		for _, o := range []uint64{0, 1, 2, 3, 4, 5, 6, 7} {
			if !slices.Contains(m.Offsets, o) {
				t.Errorf("tsc_sample offsets %v lack %d", m.Offsets, o)
			}
		}
		if len(m.Offsets) == 0 || slices.Max(m.Offsets) > 7 {
			t.Errorf("tsc_sample offsets %v, want within the 8-byte symbol", m.Offsets)
		}
		if _, ok := memoryNoiseFor(cal.Noise, "tsc_value"); ok || len(cal.Noise.Memory) != 1 {
			t.Errorf("memory noise %+v, want only tsc_sample", cal.Noise.Memory)
		}
	})

	t.Run("calibrated run is identical", func(t *testing.T) {
		c := *sc
		ApplyCalibration(&c, cal)
		res := runTSC(t, &c)
		if res.Outcome != OutcomeIdentical || !res.Passed {
			t.Fatalf("outcome %s passed=%v, want identical and passed: %+v", res.Outcome, res.Passed, res.Divergences)
		}
		real, noise := divergenceNames(res)
		if want := []string{"memory:tsc_sample", "register:rdi"}; len(real) != 0 || !slices.Equal(noise, want) {
			t.Errorf("divergences %v, noise %v; want none and %v", real, noise, want)
		}
		if res.Syncs[0].Status != "noise" {
			t.Errorf("sync status %q, want noise", res.Syncs[0].Status)
		}
	})

	t.Run("regression still fails", func(t *testing.T) {
		rs := loadTSC(t, "tsc-regress.yaml")
		ApplyCalibration(rs, cal)
		res := runTSC(t, rs)
		if res.Outcome != OutcomeDiverged || res.Passed {
			t.Fatalf("outcome %s passed=%v, want diverged and failed", res.Outcome, res.Passed)
		}
		real, noise := divergenceNames(res)
		if want := []string{"memory:tsc_value", "register:rsi"}; !slices.Equal(real, want) {
			t.Errorf("real divergences %v, want %v", real, want)
		}
		if want := []string{"memory:tsc_sample", "register:rdi"}; !slices.Equal(noise, want) {
			t.Errorf("noise divergences %v, want %v", noise, want)
		}
	})

	t.Run("write round trip", func(t *testing.T) {
		path := tempScenario(t, sc.File)
		if err := scenario.AddNoise(path, cal.Noise, "learned by lockstep calibrate on 2025-01-01: 2 runs per side"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "# learned by lockstep calibrate on 2025-01-01: 2 runs per side") {
			t.Errorf("comment missing from\n%s", data)
		}
		back, err := scenario.Load(path)
		if err != nil {
			t.Fatalf("written scenario does not load: %v\n%s", err, data)
		}
		if got := stripPos(back.Noise); !noiseEqual(got, cal.Noise) {
			t.Errorf("loaded noise %+v, want %+v", got, cal.Noise)
		}
		res := runTSC(t, back)
		if res.Outcome != OutcomeIdentical || !res.Passed {
			t.Errorf("written scenario: outcome %s passed=%v, want identical", res.Outcome, res.Passed)
		}
	})
}

// tempScenario copies a scenario into a temporary directory, with its
// kernel paths made absolute so they still resolve.
func tempScenario(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	build := filepath.Join(qemutest.Root(t), "testdata", "guests", "build")
	text := strings.ReplaceAll(string(data), "../guests/build", build)
	path := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func stripPos(n scenario.Noise) scenario.Noise {
	n.Memory = slices.Clone(n.Memory)
	for i := range n.Memory {
		n.Memory[i].Pos = scenario.Position{}
	}
	return n
}

func noiseEqual(a, b scenario.Noise) bool {
	return slices.Equal(a.Registers, b.Registers) && slices.Equal(a.CallPath, b.CallPath) &&
		slices.EqualFunc(a.Memory, b.Memory, func(x, y scenario.NoiseMemory) bool {
			return x.Symbol == y.Symbol && x.HasAddress == y.HasAddress && x.Address == y.Address &&
				slices.Equal(x.Offsets, y.Offsets)
		})
}

// TestCalibrateIcountMakesTSCDeterministic checks what QEMU does with
// determinism.icount "shift=0,sleep=off": under TCG the virtual clock, and
// with it rdtsc, advances with executed instructions only, so identical
// runs read the same TSC and there is nothing to learn. (Observed on QEMU
// 7.2: true.)
func TestCalibrateIcountMakesTSCDeterministic(t *testing.T) {
	sc := loadTSC(t, "tsc-icount.yaml")
	if sc.Determinism.Icount != "shift=0,sleep=off" {
		t.Fatalf("icount %q, want shift=0,sleep=off", sc.Determinism.Icount)
	}
	cal, err := Calibrate(context.Background(), sc, CalibrateOptions{Runs: 1})
	if err != nil {
		t.Fatalf("calibrate: %v", err)
	}
	noQEMULeft(t)
	if !cal.Noise.IsZero() || cal.Unstable() {
		t.Errorf("learned %+v (unstable: %v), want nothing", cal.Noise, cal.Err())
	}
	for _, sd := range cal.Sides {
		if sd.Varied != 0 {
			t.Errorf("side %s: %d/%d runs varied, want 0", sd.Side, sd.Varied, sd.Runs)
		}
		if !strings.Contains(sd.Label, "run-") {
			t.Errorf("side %s label %q, want the scenario's", sd.Side, sd.Label)
		}
	}
}

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
			l := newLearner(sc, 0)
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

// TestLearnCountsRuns folds synthetic runs into a learner: each item counts
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
	l := newLearner(sc, 1)
	l.learn(&Result{Divergences: []compare.Divergence{rdi, mem("a", 1, 0), mem("b", 1, 2), rdi}})
	l.learn(&Result{Divergences: []compare.Divergence{mem("a", 2, 4, 5), mem("b", 9, 3)}, Notes: []string{"n1"}})
	l.learn(&Result{Notes: []string{"n1"}})
	l.learn(&Result{Divergences: []compare.Divergence{arrival, arrival}})
	got := l.result()
	if got.Side != "b" || got.Runs != 4 || got.Varied != 3 || !slices.Equal(got.Notes, []string{"n1"}) {
		t.Errorf("side %s runs %d varied %d notes %v, want b 4 3 [n1]", got.Side, got.Runs, got.Varied, got.Notes)
	}
	if len(got.Unstable) != 1 || got.Unstable[0].Runs != 1 {
		t.Errorf("unstable %+v, want one arrival in 1 run", got.Unstable)
	}
	want := scenario.Noise{Registers: []string{"rdi"}, Memory: []scenario.NoiseMemory{
		{Symbol: "a", Offsets: seq(0, 8)}, {Symbol: "b"}}}
	if !noiseEqual(got.Noise, want) {
		t.Errorf("noise %+v, want %+v", got.Noise, want)
	}
	if got.Items[0].Runs != 1 || got.Items[1].Runs != 2 {
		t.Errorf("item runs %d %d, want 1 2", got.Items[0].Runs, got.Items[1].Runs)
	}
}

func TestMergeNoise(t *testing.T) {
	tests := []struct {
		name string
		a, b scenario.Noise
		want scenario.Noise
	}{
		{name: "empty"},
		{name: "registers once, case-insensitively",
			a:    scenario.Noise{Registers: []string{"rdi", "eflags.ZF"}},
			b:    scenario.Noise{Registers: []string{"RDI", "rax"}},
			want: scenario.Noise{Registers: []string{"rdi", "eflags.ZF", "rax"}}},
		{name: "offsets union",
			a:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{3, 1}}}},
			b:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{2, 3}}, {Address: 0x10, HasAddress: true}}},
			want: scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{1, 2, 3}}, {Address: 0x10, HasAddress: true}}}},
		{name: "whole symbol wins",
			a:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s"}}},
			b:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{2}}}},
			want: scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s"}}}},
		{name: "callpath",
			a:    scenario.Noise{CallPath: []string{"tick"}},
			b:    scenario.Noise{CallPath: []string{"tock", "tick"}},
			want: scenario.Noise{CallPath: []string{"tick", "tock"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MergeNoise(tt.a, tt.b); !noiseEqual(got, tt.want) {
				t.Errorf("MergeNoise = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseRangeName checks that every memory name parseRangeName accepts
// is printed back by rangeName to a name that parses to the same range. It
// is seeded with the memory names of the tsc scenarios.
func FuzzParseRangeName(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "scenarios", "tsc*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if _, sym, ok := strings.Cut(line, "symbol: "); ok {
				sym = strings.TrimSpace(sym)
				f.Add(sym)
				f.Add(sym + "+0x10")
			}
		}
	}
	f.Add("0x1000")
	f.Add("0x")
	f.Add("sym+10")
	f.Fuzz(func(t *testing.T, name string) {
		m, ok := parseRangeName(name)
		if !ok {
			return
		}
		back, ok := parseRangeName(rangeName(m))
		if !ok || back != m {
			t.Errorf("%q parsed to %+v, printed %q, parsed back to %+v (%v)", name, m, rangeName(m), back, ok)
		}
	})
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
