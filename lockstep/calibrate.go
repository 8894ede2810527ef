package lockstep

import (
	"context"
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/calibrate"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// The bounds of an adaptive calibration when CalibrateOptions leaves them
// zero: at least DefaultMinRuns runs per side, at most DefaultMaxRuns, and
// stop once DefaultSettle runs in a row found nothing new.
const (
	DefaultMinRuns = calibrate.DefaultMinRuns
	DefaultMaxRuns = calibrate.DefaultMaxRuns
	DefaultSettle  = calibrate.DefaultSettle
)

// IcountOption is the determinism.icount value Calibrate tries on learned
// noise, and suggests when the noise goes away with it.
const IcountOption = calibrate.IcountOption

// UnstableHint is the advice given for divergences that calibration cannot
// learn as noise.
const UnstableHint = calibrate.UnstableHint

// IcountHint is the advice given when learned noise went away under
// determinism.icount: it comes from time.
const IcountHint = calibrate.IcountHint

// CalibrateOptions tune Calibrate. The zero value runs each side
// adaptively with the default bounds and tries icount on what it learns.
type CalibrateOptions struct {
	// Runs is an exact number of runs per side. 0 means adaptive: at
	// least MinRuns, until Settle runs in a row find nothing new, at most
	// MaxRuns.
	Runs int
	// MinRuns, MaxRuns and Settle bound the adaptive runs; 0 means
	// DefaultMinRuns, DefaultMaxRuns and DefaultSettle. Settle also
	// judges an exact count: a side whose last Settle runs were not all
	// quiet is reported as not settled.
	MinRuns, MaxRuns, Settle int
	// NoIcountProbe skips the run under determinism.icount that tells
	// whether a side's noise comes from time. The probe is made only for
	// a side that learned noise, and only when the scenario has no icount
	// and no KVM side.
	NoIcountProbe bool
	// Options are passed to every Run; NoNoise is forced on.
	Options
	// OnRun, when set, is called after each run of a side against itself
	// (not after the icount probe).
	OnRun func(CalibrationRun)
}

// CalibrationRun is one run of a side against itself, as OnRun sees it.
type CalibrationRun struct {
	// Side is 0 for a, 1 for b; Run counts from 1.
	Side, Run int
	// Result is the run's result.
	Result *Result
	// New reports that the run found noise (an item, memory offsets) or
	// an unstable difference that no earlier run of the side found.
	New bool
	// Stable is how many runs in a row, ending with this one, found
	// nothing new.
	Stable int
	// Plan is the resolved plan, for "run 4 of at most 12".
	Plan CalibrationPlan
}

// CalibrationPlan says how many times each side runs against itself: an
// exact count, or the bounds of adaptive runs.
type CalibrationPlan = calibrate.Plan

// Calibration is what Calibrate learned: the scenario's name, the plan,
// each side's SideCalibration and the union of their noise. Its Unstable
// method reports whether some side diverged from itself in a way that
// cannot be learned as noise, and Err lists those divergences; Settled,
// FromTime and Advice say how far to trust it and what to do.
type Calibration = calibrate.Calibration

// SideCalibration is what varied when one side ran against itself: the
// learnable items, the unstable ones, the side's noise, the runs' notes,
// how many runs it took and whether it settled, and what icount did.
type SideCalibration = calibrate.SideCalibration

// NoiseItem is one thing that varied between identical runs: a register or
// named flag bit, memory bytes of a symbol or address, or a call-path
// function.
type NoiseItem = calibrate.NoiseItem

// UnstableItem is a divergence between identical runs that cannot be
// learned as noise.
type UnstableItem = calibrate.UnstableItem

// IcountProbe is what a run of a side under determinism.icount showed
// about its learned noise: which items went away, which stayed.
type IcountProbe = calibrate.IcountProbe

// ErrUnstable is wrapped by (*Calibration).Err when some side diverged from
// itself in a way that cannot be learned as noise.
var ErrUnstable = calibrate.ErrUnstable

// Calibrate runs each side of sc against itself with noise disabled and
// learns what varies between identical runs: registers (whole, or single
// named flag bits), memory bytes and call-path functions. Arrival, exit
// and instruction divergences between identical runs cannot be ignored;
// they are returned as Unstable items.
//
// A side runs opts.Runs times, or adaptively: until opts.Settle runs in a
// row find nothing new, within opts.MinRuns and opts.MaxRuns. A side that
// learned noise then runs once more under determinism.icount, when the
// scenario could take it, to tell whether the noise comes from time.
//
// The error wraps ErrInfrastructure or is a *ScenarioError, as for Run;
// invalid options are a *ScenarioError. After a failed run the
// Calibration holds what the runs before it learned.
func Calibrate(ctx context.Context, sc *scenario.Scenario, opts CalibrateOptions) (*Calibration, error) {
	for i, g := range sc.Guests {
		if g.Attach != nil {
			return nil, &ScenarioError{Err: fmt.Errorf("%s: calibrate: guest %s attaches to a running QEMU; calibration launches each side many times from boot",
				sc.PosOf(fmt.Sprintf("guests.%s.attach", scenario.SideNames[i])), scenario.SideNames[i])}
		}
	}
	plan, err := calibrate.Plan{Runs: opts.Runs, MinRuns: opts.MinRuns, MaxRuns: opts.MaxRuns, Settle: opts.Settle}.Resolve()
	if err != nil {
		return nil, &ScenarioError{Err: fmt.Errorf("calibrate: %w", err)}
	}
	ropts := opts.Options
	ropts.NoNoise = true
	cal := &Calibration{Scenario: sc.Name, Plan: plan, Icountable: calibrate.Icountable(sc)}
	for s := range 2 {
		side, err := calibrateSide(ctx, sc, s, plan, ropts, opts.OnRun)
		cal.Sides[s] = side
		if err != nil {
			return cal, err
		}
		if cal.Icountable && !opts.NoIcountProbe && len(side.Items) > 0 {
			if err := probeIcount(ctx, sc, s, &cal.Sides[s], ropts); err != nil {
				return cal, err
			}
		}
	}
	cal.Noise = MergeNoise(cal.Sides[0].Noise, cal.Sides[1].Noise)
	return cal, nil
}

// calibrateSide runs side s of sc against itself as plan says.
func calibrateSide(ctx context.Context, sc *scenario.Scenario, s int, plan calibrate.Plan, ropts Options, onRun func(CalibrationRun)) (SideCalibration, error) {
	self := calibrate.SelfScenario(sc, s)
	var last *Result
	run := func(ctx context.Context, n int) ([]string, []compare.Divergence, error) {
		res, err := selfRun(ctx, self, s, n, ropts)
		if err != nil {
			return nil, nil, err
		}
		last = res
		return res.Notes, res.Divergences, nil
	}
	var observe func(calibrate.Step)
	if onRun != nil {
		observe = func(st calibrate.Step) {
			onRun(CalibrationRun{Side: s, Run: st.Run, Result: last, New: st.New, Stable: st.Stable, Plan: plan})
		}
	}
	return plan.Side(ctx, calibrate.NewLearner(sc, s), run, observe)
}

// selfRun is run n of a side against itself.
func selfRun(ctx context.Context, self *scenario.Scenario, s, n int, ropts Options) (*Result, error) {
	if ctx.Err() != nil {
		return nil, guest.Infraf("calibrate side %s run %d: %w", scenario.SideNames[s], n, context.Cause(ctx))
	}
	res, err := Run(ctx, self, ropts)
	if err != nil {
		return nil, fmt.Errorf("calibrate side %s run %d: %w", scenario.SideNames[s], n, err)
	}
	return res, nil
}

// probeIcount runs side s against itself once under determinism.icount
// and records in side which of its learned noise went away. A probe that
// QEMU does not carry through is a note on the side, not a failed
// calibration, unless ctx is done.
func probeIcount(ctx context.Context, sc *scenario.Scenario, s int, side *SideCalibration, ropts Options) error {
	res, err := Run(ctx, calibrate.IcountScenario(sc, s), ropts)
	if err != nil {
		if ctx.Err() != nil {
			return guest.Infraf("calibrate side %s under icount: %w", scenario.SideNames[s], context.Cause(ctx))
		}
		side.Notes = append(side.Notes, fmt.Sprintf("the run under determinism.icount %q failed, so whether the noise comes from time is not known: %v", IcountOption, err))
		return nil
	}
	l := calibrate.NewLearner(sc, s)
	l.Learn(res.Notes, res.Divergences)
	side.Icount = calibrate.NewIcountProbe(*side, l.Result())
	return nil
}

// DiffOffsets returns the offsets, from the range start, of the bytes
// marked as differing in md's hexdump rows, in increasing order.
func DiffOffsets(md *compare.MemoryDiff) []int { return calibrate.DiffOffsets(md) }

// CallPathFunctions returns the functions present on one side only of a
// call-path diff, each once, in order.
func CallPathFunctions(d *compare.CallPathDiff) []string { return calibrate.CallPathFunctions(d) }

// MergeNoise returns the union of a and b: registers and call-path functions
// once each in order of first appearance; memory entries for the same
// symbol (or address) merged, with offsets unioned, or the whole symbol
// when either entry has no offsets. Like scenario.AddNoise.
func MergeNoise(a, b scenario.Noise) scenario.Noise { return calibrate.MergeNoise(a, b) }

// ApplyCalibration merges c's learned noise into sc.Noise in memory, so that
// a following Run marks divergences within it as noise.
func ApplyCalibration(sc *scenario.Scenario, c *Calibration) {
	sc.Noise = MergeNoise(sc.Noise, c.Noise)
}
