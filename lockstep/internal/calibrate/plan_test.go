package calibrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Synthetic divergences at the sync point "f" of planScenario.
func regDiv(name, a, b string, bits ...string) compare.Divergence {
	return compare.Divergence{Kind: compare.KindRegister, SyncName: "f",
		Register: &compare.RegisterDiff{Name: name, Values: [2]string{a, b}, Bits: bits}}
}

// memDiv is a difference in bytes diff of buf (rows short of diffBytes
// make it the whole range).
func memDiv(diffBytes int, diff ...int) compare.Divergence {
	r := compare.HexRow{Diff: make([]bool, 16)}
	for _, d := range diff {
		r.Diff[d] = true
	}
	return compare.Divergence{Kind: compare.KindMemory, SyncName: "f",
		Memory: &compare.MemoryDiff{Name: "buf", DiffBytes: diffBytes, Rows: []compare.HexRow{r}}}
}

var arrivalDiv = compare.Divergence{Kind: compare.KindArrival, SyncName: "f", Summary: "a#2 never got there"}

func planScenario() *scenario.Scenario {
	return &scenario.Scenario{Guests: [2]scenario.Guest{{Arch: "x86_64", Label: "x"}, {Arch: "x86_64", Label: "y"}},
		Sync: []scenario.SyncPoint{{Break: "f", Compare: scenario.CompareSpec{Memory: []scenario.MemoryRange{{Symbol: "buf"}}}}}}
}

// issueRun models the guest of issue 15, whose 3 calibration runs learned
// rcx, rsi, eflags.PF and eflags.AF, after which a run failed on rax: rcx
// and rsi vary in every run, PF from run 2 on, AF from run 3 on (flag bits
// of a time-derived value vary together only now and then), and rax
// (0x2a vs 0x2b) only in run 5.
func issueRun(n int) []compare.Divergence {
	divs := []compare.Divergence{regDiv("rcx", "0x1", "0x2"), regDiv("rsi", "0x10", "0x11")}
	switch {
	case n >= 3:
		divs = append(divs, regDiv("eflags", "0x0", "0x14", "PF", "AF"))
	case n == 2:
		divs = append(divs, regDiv("eflags", "0x0", "0x4", "PF"))
	}
	if n == 5 {
		divs = append(divs, regDiv("rax", "0x2a", "0x2b"))
	}
	return divs
}

// rareRun is issueRun without the staggered flags: everything but rax
// varies from run 1 on.
func rareRun(n int) []compare.Divergence {
	divs := []compare.Divergence{regDiv("rcx", "0x1", "0x2")}
	if n == 5 {
		divs = append(divs, regDiv("rax", "0x2a", "0x2b"))
	}
	return divs
}

// TestPlanSide checks the stopping rule on synthetic runs (no QEMU): how
// many runs a side takes, which runs found something new, how stable it
// ended and what it learned. Issue 15's guest is modelled by issueRun:
// noise that first appears in run 5, which 3 fixed runs miss.
func TestPlanSide(t *testing.T) {
	t.Parallel()
	every := func(divs ...compare.Divergence) func(int) []compare.Divergence {
		return func(int) []compare.Divergence { return divs }
	}
	tests := []struct {
		name    string
		plan    Plan
		runs    func(n int) []compare.Divergence
		runsN   int   // runs taken
		news    []int // runs that found something new
		stable  int
		settled bool
		rules   []string
		first   map[string]int // run that first found a rule
	}{
		{name: "deterministic guest stops at the minimum", runs: every(),
			runsN: 3, stable: 3, settled: true},
		{name: "noise in every run (TSC) settles after one run and three quiet ones",
			runs:  every(regDiv("rdi", "0x1", "0x2"), memDiv(2, 0, 3)),
			runsN: 4, news: []int{1}, stable: 3, settled: true, rules: []string{"rdi", "buf"}},
		{name: "issue 15: three fixed runs miss rax and do not settle", plan: Plan{Runs: 3}, runs: issueRun,
			runsN: 3, news: []int{1, 2, 3}, stable: 0, settled: false,
			rules: []string{"rcx", "rsi", "eflags.PF", "eflags.AF"}},
		{name: "issue 15: adaptive runs find rax in run 5", runs: issueRun,
			runsN: 8, news: []int{1, 2, 3, 5}, stable: 3, settled: true,
			rules: []string{"rcx", "rsi", "eflags.PF", "eflags.AF", "rax"},
			first: map[string]int{"rcx": 1, "eflags.PF": 2, "eflags.AF": 3, "rax": 5}},
		{name: "rare noise after Settle quiet runs is missed (what MissBound says)", runs: rareRun,
			runsN: 4, news: []int{1}, stable: 3, settled: true, rules: []string{"rcx"}},
		{name: "new noise in every run ends at the bound unsettled",
			runs: func(n int) []compare.Divergence {
				return []compare.Divergence{regDiv(fmt.Sprintf("r%d", n), "0x0", "0x1")}
			},
			runsN: 12, news: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, stable: 0, settled: false},
		{name: "noise in the last minimum run needs three more", runs: func(n int) []compare.Divergence {
			if n == 3 {
				return []compare.Divergence{regDiv("rbx", "0x0", "0x1")}
			}
			return nil
		}, runsN: 6, news: []int{3}, stable: 3, settled: true, rules: []string{"rbx"}, first: map[string]int{"rbx": 3}},
		{name: "new memory offsets are new noise", runs: func(n int) []compare.Divergence {
			if n == 2 {
				return []compare.Divergence{memDiv(1, 9)}
			}
			return []compare.Divergence{memDiv(1, 1)}
		}, runsN: 5, news: []int{1, 2}, stable: 3, settled: true, rules: []string{"buf"}},
		{name: "the same word's other bytes are not", runs: func(n int) []compare.Divergence {
			return []compare.Divergence{memDiv(1, n%8)}
		}, runsN: 4, news: []int{1}, stable: 3, settled: true, rules: []string{"buf"}},
		{name: "the whole range after offsets is new noise", runs: func(n int) []compare.Divergence {
			if n == 3 {
				return []compare.Divergence{memDiv(20, 1)}
			}
			return []compare.Divergence{memDiv(1, 1)}
		}, runsN: 6, news: []int{1, 3}, stable: 3, settled: true, rules: []string{"buf"}},
		{name: "a flag bit, then the whole flags register", runs: func(n int) []compare.Divergence {
			if n == 4 {
				return []compare.Divergence{regDiv("eflags", "0x0", "0x40000004", "PF")}
			}
			return []compare.Divergence{regDiv("eflags", "0x0", "0x4", "PF")}
		}, runsN: 7, news: []int{1, 4}, stable: 3, settled: true, rules: []string{"eflags.PF", "eflags"}},
		{name: "a new unstable difference counts as new", runs: func(n int) []compare.Divergence {
			if n >= 2 {
				return []compare.Divergence{arrivalDiv}
			}
			return nil
		}, runsN: 5, news: []int{2}, stable: 3, settled: true},
		{name: "custom bounds: min 5, settle 2", plan: Plan{MinRuns: 5, MaxRuns: 6, Settle: 2},
			runs:  every(regDiv("rdi", "0x1", "0x2")),
			runsN: 5, news: []int{1}, stable: 4, settled: true, rules: []string{"rdi"}},
		{name: "a bound cuts off late noise, unsettled", plan: Plan{MaxRuns: 4}, runs: issueRun,
			runsN: 4, news: []int{1, 2, 3}, stable: 1, settled: false, rules: []string{"rcx", "rsi", "eflags.PF", "eflags.AF"}},
		{name: "a fixed count settles when its last runs are quiet", plan: Plan{Runs: 5},
			runs:  every(regDiv("rdi", "0x1", "0x2")),
			runsN: 5, news: []int{1}, stable: 4, settled: true, rules: []string{"rdi"}},
		{name: "one fixed run never settles", plan: Plan{Runs: 1}, runs: every(),
			runsN: 1, stable: 1, settled: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tt.plan.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			var news []int
			lastStable := 0
			run := func(_ context.Context, n int) ([]string, []compare.Divergence, error) {
				return nil, tt.runs(n), nil
			}
			side, err := p.Side(context.Background(), NewLearner(planScenario(), 0), run, func(st Step) {
				if st.New {
					news = append(news, st.Run)
				}
				lastStable = st.Stable
			})
			if err != nil {
				t.Fatal(err)
			}
			if side.Runs != tt.runsN || side.Stable != tt.stable || side.Settled != tt.settled || lastStable != side.Stable {
				t.Errorf("runs %d stable %d (observed %d) settled %v, want %d %d %v",
					side.Runs, side.Stable, lastStable, side.Settled, tt.runsN, tt.stable, tt.settled)
			}
			if !slices.Equal(news, tt.news) {
				t.Errorf("new noise in runs %v, want %v", news, tt.news)
			}
			var rules []string
			for _, it := range side.Items {
				rules = append(rules, it.Rule)
				if want, ok := tt.first[it.Rule]; ok && it.First != want {
					t.Errorf("%s first found in run %d, want %d", it.Rule, it.First, want)
				}
			}
			if tt.rules != nil && !slices.Equal(rules, tt.rules) {
				t.Errorf("rules %v, want %v", rules, tt.rules)
			}
		})
	}
}

// TestPlanSideError checks that a failed run ends the side with what the
// runs before it found, and the error.
func TestPlanSideError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	p, err := Plan{}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	run := func(_ context.Context, n int) ([]string, []compare.Divergence, error) {
		if n == 2 {
			return nil, nil, boom
		}
		return nil, []compare.Divergence{regDiv("rdi", "0x1", "0x2")}, nil
	}
	side, err := p.Side(context.Background(), NewLearner(planScenario(), 1), run, nil)
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	if side.Side != "b" || side.Runs != 1 || side.Settled || len(side.Noise.Registers) != 1 {
		t.Errorf("side %s runs %d settled %v noise %+v, want b, 1 run, unsettled, rdi", side.Side, side.Runs, side.Settled, side.Noise)
	}
}

// TestPlanResolve checks the defaults, how an unset bound makes room for
// a set one, and that every inconsistency is named at once.
func TestPlanResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Plan
		want Plan
		errs []string
	}{
		{in: Plan{}, want: Plan{MinRuns: 3, MaxRuns: 12, Settle: 3}},
		{in: Plan{Runs: 3}, want: Plan{Runs: 3, Settle: 3}},
		{in: Plan{Runs: 3, Settle: 1}, want: Plan{Runs: 3, Settle: 1}},
		{in: Plan{MinRuns: 20}, want: Plan{MinRuns: 20, MaxRuns: 20, Settle: 3}},
		{in: Plan{Settle: 15}, want: Plan{MinRuns: 3, MaxRuns: 15, Settle: 15}},
		{in: Plan{MaxRuns: 2}, want: Plan{MinRuns: 2, MaxRuns: 2, Settle: 2}},
		{in: Plan{MinRuns: 1, MaxRuns: 30, Settle: 5}, want: Plan{MinRuns: 1, MaxRuns: 30, Settle: 5}},
		{in: Plan{Runs: -1, Settle: -2}, errs: []string{"runs must be positive, not -1", "settle must be positive, not -2"}},
		{in: Plan{Runs: 3, MaxRuns: 5}, errs: []string{"excludes min runs and max runs"}},
		{in: Plan{MinRuns: 6, MaxRuns: 5, Settle: 7}, errs: []string{"min runs 6 exceeds max runs 5", "settle 7 exceeds max runs 5"}},
	}
	for _, tt := range tests {
		got, err := tt.in.Resolve()
		if tt.errs == nil {
			if err != nil || got != tt.want {
				t.Errorf("%+v: resolved %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			continue
		}
		for _, want := range tt.errs {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%+v: error %v, want it to say %q", tt.in, err, want)
			}
		}
	}
}
