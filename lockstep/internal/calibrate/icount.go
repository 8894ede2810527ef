package calibrate

import (
	"math"

	"github.com/lockstep-dev/lockstep/scenario"
)

// IcountOption is the determinism.icount value tried on, and suggested
// for, noise that comes from time: virtual time advances with executed
// instructions only, so rdtsc, timers and timer interrupts are the same
// in every run.
const IcountOption = "shift=0,sleep=off"

// IcountHint is the advice given when learned noise went away under
// determinism.icount.
const IcountHint = "noise that went away under determinism.icount comes from time: rather than ignore it, " +
	"make it go away with determinism.icount: \"" + IcountOption + "\" (TCG only)"

// UnstableHint is the advice given for divergences that calibration cannot
// learn as noise.
const UnstableHint = "identical runs diverged in a way that cannot be ignored; add determinism " +
	"(determinism.icount: \"" + IcountOption + "\" on TCG, determinism.sstep: [noirq, notimer], determinism.rtc: clock=vm)"

// unstableHintNoIcount is UnstableHint for a scenario that has icount, or
// a KVM side.
const unstableHintNoIcount = "identical runs diverged in a way that cannot be ignored; add determinism " +
	"(determinism.sstep: [noirq, notimer], determinism.rtc: clock=vm)"

// Icountable reports whether determinism.icount could be added to sc: it
// has none, and no guest runs under KVM (QEMU refuses -icount with KVM).
func Icountable(sc *scenario.Scenario) bool {
	if sc.Determinism.Icount != "" {
		return false
	}
	for _, g := range sc.Guests {
		if g.Accel == scenario.AccelKVM {
			return false
		}
	}
	return true
}

// IcountScenario returns SelfScenario(sc, s) with determinism.icount set
// to IcountOption.
func IcountScenario(sc *scenario.Scenario, s int) *scenario.Scenario {
	c := SelfScenario(sc, s)
	c.Name = sc.Name + " (calibrate " + scenario.SideNames[s] + ", icount)"
	c.Determinism.Icount = IcountOption
	return c
}

// IcountProbe is what running a side against itself under
// determinism.icount showed about the noise it learned without.
type IcountProbe struct {
	// Icount is the option tried.
	Icount string
	// Runs is the number of runs under icount.
	Runs int
	// Gone are the rules of the learned items that did not vary under
	// icount although they varied often enough that chance does not
	// explain it (see NewIcountProbe); Kept are those that still varied;
	// Unsure are those that did not vary, but varied too rarely before
	// for that to say anything.
	Gone   []string
	Kept   []string
	Unsure []string
	// Other counts the differences found under icount only, unstable ones
	// included.
	Other int
}

// FromTime reports whether some learned noise went away under icount. It
// is false for a nil probe.
func (p *IcountProbe) FromTime() bool { return p != nil && len(p.Gone) > 0 }

// NewIcountProbe compares what a side learned (learned) with what the same
// side found under icount (probe, from a Learner of its own). An item
// that varied in a share f of the learned runs and in none of the k runs
// under icount is gone only when that had a chance (1-f)^k of at most 5%
// without icount: with one run under icount, only items that varied in
// every run.
func NewIcountProbe(learned, probe SideCalibration) *IcountProbe {
	p := &IcountProbe{Icount: IcountOption, Runs: probe.Runs, Other: len(probe.Unstable)}
	under := map[string]bool{}
	for _, it := range probe.Items {
		under[itemKey(it.Kind, it.Rule)] = true
	}
	for _, it := range learned.Items {
		key := itemKey(it.Kind, it.Rule)
		switch {
		case under[key]:
			p.Kept = append(p.Kept, it.Rule)
			delete(under, key)
		case chanceQuiet(it.Runs, learned.Runs, probe.Runs) <= 0.05:
			p.Gone = append(p.Gone, it.Rule)
		default:
			p.Unsure = append(p.Unsure, it.Rule)
		}
	}
	p.Other += len(under)
	return p
}

// chanceQuiet is the chance that an item that varied in varied of runs
// runs varies in none of k more: (1-varied/runs)^k.
func chanceQuiet(varied, runs, k int) float64 {
	if runs == 0 || k == 0 {
		return 1
	}
	return math.Pow(1-float64(varied)/float64(runs), float64(k))
}
