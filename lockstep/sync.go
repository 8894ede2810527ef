package lockstep

import (
	"context"
	"fmt"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/localize"
	"github.com/lockstep-dev/lockstep/scenario"
)

// syncPoint drives both sides to sync point k, compares them there, saves
// a checkpoint, localises and steps the window as the scenario asks. It
// reports whether the run can go on to the next point.
func (r *run) syncPoint(ctx context.Context, k int) (bool, error) {
	sp := &r.sc.Sync[k]
	sr := &r.res.Syncs[k]
	t0 := time.Now()
	defer func() { sr.Duration = time.Since(t0) }()

	pt, err := r.eng.Point(ctx, r.pair, k)
	for i := range pt.Arrivals {
		sr.Reached[i] = pt.Arrivals[i].Reached()
	}
	sr.PC = pt.PC
	sr.State = pt.Captured
	sr.Stats = pt.Stats
	r.record(k, pt.Divergences)
	if err != nil {
		return false, err
	}
	if !pt.Reached() {
		sr.Status = SyncUnreached
		for i, a := range pt.Arrivals {
			switch a.State {
			case engine.Timeout:
				r.res.Sides[i].State = StateRunning
			case engine.Stopped:
				r.res.Sides[i].State = StateStopped
			}
		}
		if len(pt.Divergences) == 0 || onlyCallPath(pt.Divergences) {
			r.Note(fmt.Sprintf("neither side reached sync point %d (%s), so nothing was compared there: a %s; b %s",
				k+1, sp.Break, pt.Arrivals[0].Detail, pt.Arrivals[1].Detail))
		}
		return false, nil
	}
	sr.Uncompared = pt.Uncompared
	// Both sides reached the point and it was compared: its status says
	// what was found, even if localising or stepping its window fails.
	defer func() { sr.Status = r.status(k) }()
	// Save this point before a step window moves the guests on, so that a
	// later divergence can localise from here without a restart.
	if localize.WantCheckpoint(r.sc, k, time.Since(r.start)) {
		t1 := time.Now()
		if err := localize.SaveBoth(ctx, r.pair, k); err != nil {
			if ctx.Err() != nil {
				return false, err
			}
			r.Note(fmt.Sprintf("checkpoint at sync point %d failed (%v); localisation will restart the guests", k+1, err))
		} else {
			r.eng.Logf("checkpoint at sync point %d took %s", k+1, time.Since(t1).Round(time.Millisecond))
		}
	}
	if r.shouldLocalize(k, pt.Divergences) {
		if err := r.localize(ctx, k, pt.Divergences); err != nil {
			return false, err
		}
	}
	if sp.Step > 0 {
		w, err := r.eng.StepWindow(ctx, r.pair, k)
		sr.Steps = w.Steps
		r.record(k, w.Divergences)
		r.holdInstruction(k, w.Divergences)
		if err != nil {
			return false, err
		}
	}
	if err := r.eng.Leave(ctx, r.pair, k); err != nil {
		return false, err
	}
	return true, nil
}

func onlyCallPath(divs []compare.Divergence) bool {
	for _, d := range divs {
		if d.Kind != compare.KindCallPath {
			return false
		}
	}
	return true
}

// status is the status of sync point k, which both sides reached, from
// what was recorded there.
func (r *run) status(k int) SyncStatus {
	sr := &r.res.Syncs[k]
	switch {
	case r.realAt(k):
		return SyncDiverge
	case len(sr.Uncompared) > 0:
		return SyncIncomplete
	case sr.Divergences > 0:
		return SyncNoise
	}
	return SyncMatch
}

// realAt reports whether a divergence that is not noise was recorded at
// sync point k.
func (r *run) realAt(k int) bool {
	for _, d := range r.res.Divergences {
		if d.Sync == k && !d.Noise {
			return true
		}
	}
	return false
}

// shouldLocalize reports whether sync point k, with divergences found,
// is the first divergent point after a matching one, which is where
// localisation starts.
func (r *run) shouldLocalize(k int, found []compare.Divergence) bool {
	if !r.sc.Localize.Enabled || r.sc.Sync[k].Now {
		return false
	}
	if r.injectedBefore(k) {
		r.Note(fmt.Sprintf("sync point %d: not localised: a fault was injected at a function's entry or return on the way to it, which stepping from sync point %d would not repeat; inject at a sync point (at: {sync: N}) to localise its consequences", k+1, k))
		return false
	}
	real := false
	for _, d := range found {
		if !d.Noise && (d.Kind == compare.KindRegister || d.Kind == compare.KindMemory || d.Kind == compare.KindCallPath) {
			real = true
		}
	}
	if !real {
		return false
	}
	if k == 0 {
		// No earlier sync point: localise from boot.
		return true
	}
	prev := r.res.Syncs[k-1]
	if r.sc.SameBinary() {
		// Stepping compares registers from k-1 on: they must agree there.
		return prev.Status == SyncMatch || prev.Status == SyncNoise || prev.Status == SyncIncomplete
	}
	// Between builds each window's function entries are compared on their
	// own, so every divergent point after one both sides reached counts.
	if r.localized >= maxLocalizations {
		r.Note(fmt.Sprintf("sync point %d: not localised; a run localises at most %d sync points", k+1, maxLocalizations))
		return false
	}
	return prev.Reached[0] && prev.Reached[1]
}

// localize finds where the guests parted between sync points k-1 and k,
// on guests rewound by snapshot when the run has one of k-1, by relaunch
// otherwise.
func (r *run) localize(ctx context.Context, k int, found []compare.Divergence) (err error) {
	r.localized++
	rw := r.rewinder(ctx, k)
	l := &localize.Localizer{E: r.eng, RW: rw, Bisect: &localize.Bisector{Launcher: r.launcher,
		Specs: [2]scenario.Guest(r.sc.Guests), Syms: r.syms, Dir: r.dir, Keep: r.opts.Keep,
		AfterRecord: r.opts.afterRecord}}
	divs, err := l.At(ctx, k, found)
	r.res.Syncs[k].Localization = localization(l.Info)
	if cerr := rw.Close(ctx); err == nil {
		err = cerr
	}
	r.record(k, divs)
	r.holdInstruction(k-1, divs)
	return err
}

// rewinder picks how localisation gets back to sync point k-1.
func (r *run) rewinder(ctx context.Context, k int) localize.Rewinder {
	relaunch := &localize.Relaunch{Engine: r.eng, Launcher: r.launcher,
		Specs: [2]scenario.Guest(r.sc.Guests), Syms: r.syms}
	if localize.Mode(r.sc) == scenario.CheckpointRestart || !localize.HasBoth(ctx, r.pair, k-1) {
		return relaunch
	}
	if err := localize.SaveBoth(ctx, r.pair, k); err != nil {
		r.Note(fmt.Sprintf("localisation: could not save sync point %d to come back to (%v); restarting the guests instead", k+1, err))
		return relaunch
	}
	return &localize.Snapshot{Pair: r.pair, Here: k, Log: r.eng.Logf, Engine: r.eng}
}

// localization is the report's view of how a sync point was localised.
func localization(in localize.Info) *Localization {
	if in.Method == "" && in.Fallback == "" {
		return nil
	}
	return &Localization{Method: in.Method, Why: in.Why, Fallback: in.Fallback, Depth: in.Depth,
		Probes: in.Probes, Passes: in.Passes, Record: in.Record, Replay: in.Replay, ICount: in.ICount}
}
