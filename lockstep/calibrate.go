package lockstep

import (
	"context"
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/calibrate"
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

// Calibration is what Calibrate learned: the scenario's name, the runs per
// side, each side's SideCalibration and the union of their noise. Its
// Unstable method reports whether some side diverged from itself in a way
// that cannot be learned as noise, and Err lists those divergences.
type Calibration = calibrate.Calibration

// SideCalibration is what varied when one side ran against itself: the
// learnable items, the unstable ones, the side's noise and the runs' notes.
type SideCalibration = calibrate.SideCalibration

// NoiseItem is one thing that varied between identical runs: a register or
// named flag bit, memory bytes of a symbol or address, or a call-path
// function.
type NoiseItem = calibrate.NoiseItem

// UnstableItem is a divergence between identical runs that cannot be
// learned as noise.
type UnstableItem = calibrate.UnstableItem

// ErrUnstable is wrapped by (*Calibration).Err when some side diverged from
// itself in a way that cannot be learned as noise.
var ErrUnstable = calibrate.ErrUnstable

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
		l := calibrate.NewLearner(sc, s)
		self := calibrate.SelfScenario(sc, s)
		for j := range runs {
			if err := ctx.Err(); err != nil {
				return cal, guest.Infraf("calibrate side %s run %d: %w", scenario.SideNames[s], j+1, context.Cause(ctx))
			}
			res, err := Run(ctx, self, ropts)
			if err != nil {
				return cal, fmt.Errorf("calibrate side %s run %d: %w", scenario.SideNames[s], j+1, err)
			}
			l.Learn(res.Notes, res.Divergences)
			if opts.OnRun != nil {
				opts.OnRun(s, j+1, res)
			}
		}
		cal.Sides[s] = l.Result()
	}
	cal.Noise = MergeNoise(cal.Sides[0].Noise, cal.Sides[1].Noise)
	return cal, nil
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
