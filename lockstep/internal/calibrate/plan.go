package calibrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
)

// The bounds of an adaptive calibration when a Plan leaves them zero.
const (
	// DefaultMinRuns is the fewest runs of a side.
	DefaultMinRuns = 3
	// DefaultMaxRuns is the most runs of a side, reached when new noise
	// keeps appearing.
	DefaultMaxRuns = 12
	// DefaultSettle is how many runs in a row must find nothing new for a
	// side to be settled.
	DefaultSettle = 3
)

// Plan says how many times each side runs against itself.
//
// With Runs set, every side runs exactly Runs times. Otherwise the runs
// are adaptive: a side runs at least MinRuns times and stops once its last
// Settle runs found nothing new, or after MaxRuns runs, whichever comes
// first. Settle also judges a fixed count: a side is settled only when
// its last Settle runs found nothing new.
type Plan struct {
	// Runs is an exact number of runs per side; 0 means adaptive.
	Runs int
	// MinRuns, MaxRuns and Settle bound the adaptive runs; 0 means the
	// default.
	MinRuns int
	MaxRuns int
	Settle  int
}

// Adaptive reports whether the number of runs follows what varies.
func (p Plan) Adaptive() bool { return p.Runs == 0 }

// Resolve returns p with its zero fields set to the defaults, or an error
// naming every inconsistency. An unset bound makes room for the ones that
// are set: MinRuns 20 alone raises MaxRuns to 20, MaxRuns 2 alone lowers
// MinRuns and Settle to 2.
func (p Plan) Resolve() (Plan, error) {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"runs", p.Runs}, {"min runs", p.MinRuns}, {"max runs", p.MaxRuns}, {"settle", p.Settle}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %d", f.name, f.v))
		}
	}
	if p.Runs > 0 && (p.MinRuns > 0 || p.MaxRuns > 0) {
		errs = append(errs, errors.New("runs is an exact count: it excludes min runs and max runs"))
	}
	if len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	if p.Runs > 0 {
		p.Settle = cmpOr(p.Settle, DefaultSettle)
		return p, nil
	}
	if p.MaxRuns == 0 {
		p.MaxRuns = max(DefaultMaxRuns, p.MinRuns, p.Settle)
	}
	p.MinRuns = cmpOr(p.MinRuns, min(DefaultMinRuns, p.MaxRuns))
	p.Settle = cmpOr(p.Settle, min(DefaultSettle, p.MaxRuns))
	if p.MinRuns > p.MaxRuns {
		errs = append(errs, fmt.Errorf("min runs %d exceeds max runs %d", p.MinRuns, p.MaxRuns))
	}
	if p.Settle > p.MaxRuns {
		errs = append(errs, fmt.Errorf("settle %d exceeds max runs %d: a side could never settle", p.Settle, p.MaxRuns))
	}
	return p, errors.Join(errs...)
}

// cmpOr returns v, or dflt when v is zero.
func cmpOr(v, dflt int) int {
	if v == 0 {
		return dflt
	}
	return v
}

// Done reports whether a side that has run runs times, the last stable of
// which found nothing new, needs no more runs. p must be resolved.
func (p Plan) Done(runs, stable int) bool {
	if !p.Adaptive() {
		return runs >= p.Runs
	}
	return runs >= p.MaxRuns || (runs >= p.MinRuns && stable >= p.Settle)
}

// RunFunc runs a side against itself once (run counts from 1) and returns
// the run's notes and divergences.
type RunFunc func(ctx context.Context, run int) (notes []string, divs []compare.Divergence, err error)

// Step is what one run added to a side, as the observer of Plan.Side sees
// it.
type Step struct {
	// Run counts from 1.
	Run int
	// New reports that the run found a noise item, memory offset or
	// unstable difference that no earlier run of the side found.
	New bool
	// Stable is how many runs in a row, ending with this one, found
	// nothing new.
	Stable int
}

// Side runs l's side with run until p is done, folding each run into l
// and telling observe (when not nil) what it added. It returns what the
// side learned, with Settled set; after a failed run, what the runs before
// it learned, and the error. p must be resolved.
func (p Plan) Side(ctx context.Context, l *Learner, run RunFunc, observe func(Step)) (SideCalibration, error) {
	for !p.Done(l.out.Runs, l.out.Stable) {
		n := l.out.Runs + 1
		notes, divs, err := run(ctx, n)
		if err != nil {
			return p.result(l), err
		}
		fresh := l.Learn(notes, divs)
		if observe != nil {
			observe(Step{Run: n, New: fresh, Stable: l.out.Stable})
		}
	}
	return p.result(l), nil
}

// result is l's side, settled when its last Settle runs found nothing new.
func (p Plan) result(l *Learner) SideCalibration {
	out := l.Result()
	out.Settled = out.Runs > 0 && out.Stable >= p.Settle
	return out
}
