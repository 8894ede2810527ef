package calibrate

import (
	"math"
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestNewIcountProbe checks which learned items a run under icount
// removes, keeps or adds.
func TestNewIcountProbe(t *testing.T) {
	t.Parallel()
	learn := func(runs ...[]compare.Divergence) SideCalibration {
		l := NewLearner(planScenario(), 0)
		for _, divs := range runs {
			l.Learn(nil, divs)
		}
		return l.Result()
	}
	all := []compare.Divergence{regDiv("rdi", "0x1", "0x2"), memDiv(1, 0), regDiv("eflags", "0x0", "0x4", "PF")}
	// rax varies in one of four runs: its absence from one run under
	// icount says nothing.
	learned := learn(all, all, append(slices.Clone(all), regDiv("rax", "0x2a", "0x2b")), all)
	tests := []struct {
		name               string
		under              SideCalibration
		gone, kept, unsure []string
		other              int
		fromTime           bool
	}{
		{name: "all gone", under: learn(nil), gone: []string{"rdi", "buf", "eflags.PF"}, unsure: []string{"rax"}, fromTime: true},
		{name: "some kept", under: learn([]compare.Divergence{regDiv("eflags", "0x4", "0x0", "PF")}), gone: []string{"rdi", "buf"},
			kept: []string{"eflags.PF"}, unsure: []string{"rax"}, fromTime: true},
		{name: "all kept, more found", under: learn(append(slices.Clone(all), regDiv("rax", "0x0", "0x1"), regDiv("rbx", "0x0", "0x1"), arrivalDiv)),
			kept: []string{"rdi", "buf", "eflags.PF", "rax"}, other: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewIcountProbe(learned, tt.under)
			if p.Icount != IcountOption || p.Runs != 1 {
				t.Errorf("icount %q runs %d, want %q 1", p.Icount, p.Runs, IcountOption)
			}
			if !slices.Equal(p.Gone, tt.gone) || !slices.Equal(p.Kept, tt.kept) || !slices.Equal(p.Unsure, tt.unsure) || p.Other != tt.other {
				t.Errorf("gone %v kept %v unsure %v other %d, want %v %v %v %d", p.Gone, p.Kept, p.Unsure, p.Other, tt.gone, tt.kept, tt.unsure, tt.other)
			}
			if p.FromTime() != tt.fromTime {
				t.Errorf("FromTime %v, want %v", p.FromTime(), tt.fromTime)
			}
		})
	}
	var none *IcountProbe
	if none.FromTime() {
		t.Error("a nil probe says the noise comes from time")
	}
}

// TestAdvice checks when icount is suggested: noise gone under icount, and
// only where icount can be added (none yet, no KVM side).
func TestAdvice(t *testing.T) {
	t.Parallel()
	sc := func(icount, accelB string) *scenario.Scenario {
		s := planScenario()
		s.Guests[0].Accel, s.Guests[1].Accel = scenario.AccelTCG, accelB
		s.Determinism.Icount = icount
		return s
	}
	if !Icountable(sc("", scenario.AccelTCG)) || Icountable(sc("shift=0", scenario.AccelTCG)) || Icountable(sc("", scenario.AccelKVM)) {
		t.Error("Icountable: want true for TCG without icount only")
	}
	timed := &IcountProbe{Gone: []string{"rdi"}}
	tests := []struct {
		name       string
		icountable bool
		probe      *IcountProbe
		unstable   bool
		want       []string
	}{
		{name: "nothing", icountable: true},
		{name: "from time", icountable: true, probe: timed, want: []string{IcountHint}},
		{name: "not from time", icountable: true, probe: &IcountProbe{Kept: []string{"rdi"}}},
		{name: "icount impossible", probe: timed},
		{name: "unstable", icountable: true, unstable: true, want: []string{UnstableHint}},
		{name: "unstable without icount", unstable: true, want: []string{unstableHintNoIcount}},
		{name: "both", icountable: true, probe: timed, unstable: true, want: []string{IcountHint, UnstableHint}},
	}
	for _, tt := range tests {
		c := &Calibration{Icountable: tt.icountable}
		c.Sides[1].Icount = tt.probe
		if tt.unstable {
			c.Sides[0].Unstable = []UnstableItem{{Kind: compare.KindArrival}}
		}
		if got := c.Advice(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: advice %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestIcountScenario checks the probe's scenario: the side against itself,
// with icount.
func TestIcountScenario(t *testing.T) {
	t.Parallel()
	sc := planScenario()
	sc.Name = "x"
	c := IcountScenario(sc, 1)
	if c.Determinism.Icount != IcountOption || c.Guests[0].Label != "b#1" || c.Guests[1].Label != "b#2" || sc.Determinism.Icount != "" {
		t.Errorf("icount %q labels %s %s (original icount %q)", c.Determinism.Icount, c.Guests[0].Label, c.Guests[1].Label, sc.Determinism.Icount)
	}
}

// TestMissBound checks the 95% bound on the share of runs in which unseen
// noise can vary.
func TestMissBound(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		runs int
		want float64
	}{{0, 1}, {1, 0.95}, {3, 0.632}, {4, 0.527}, {12, 0.221}} {
		s := SideCalibration{Runs: tt.runs}
		if got := s.MissBound(); math.Abs(got-tt.want) > 0.001 {
			t.Errorf("%d runs: %.3f, want %.3f", tt.runs, got, tt.want)
		}
	}
}
