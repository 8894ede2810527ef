package localize

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Rewinder puts a pair of guests at an earlier sync point.
type Rewinder interface {
	// At returns a pair standing at sync point j (0-based), with no
	// breakpoints of lockstep's in it. The pair is valid until the next
	// call of At or Close. An error wrapping ErrNotReplayed means the
	// guests did not get there again.
	At(ctx context.Context, j int) (guest.Pair, error)
	// Close releases what At made and puts the run's own guests back where
	// they were.
	Close(ctx context.Context) error
}

// ErrNotReplayed means a replay did not reach the sync point it was
// driving to: the guests are not deterministic enough to replay.
var ErrNotReplayed = errors.New("the replay did not reach the sync point")

// Relaunch rewinds by starting a fresh pair of guests and replaying them
// from boot to the sync point. The run's own guests are not touched.
type Relaunch struct {
	Engine   *engine.Engine
	Launcher guest.Launcher
	Specs    [2]scenario.Guest
	Syms     [2]*symbols.Table

	pair guest.Pair
}

// At starts a fresh pair and replays it to sync point j.
func (r *Relaunch) At(ctx context.Context, j int) (guest.Pair, error) {
	if err := r.closePair(ctx); err != nil {
		return guest.Pair{}, err
	}
	p, err := guest.LaunchPair(ctx, r.Launcher, r.Specs, r.Syms, "-localise")
	if err != nil {
		return p, fmt.Errorf("localisation: %w", err)
	}
	r.pair = p
	for _, g := range p {
		if _, err := g.ApplySstep(ctx, r.Engine.Scenario().Determinism.Sstep); err != nil {
			return p, guest.Infra(err)
		}
	}
	for i := 0; i <= j; i++ {
		if _, err := Replay(ctx, r.Engine, p, i, [2]map[uint64]string{}); err != nil {
			return p, err
		}
		// The run's guests left sync point i with its injections.
		if err := r.Engine.Reinject(ctx, p, i); err != nil {
			return p, guest.Infra(fmt.Errorf("localisation replay: %w", err))
		}
	}
	return p, nil
}

// Close tears the last pair down.
func (r *Relaunch) Close(ctx context.Context) error { return r.closePair(ctx) }

func (r *Relaunch) closePair(ctx context.Context) error {
	err := closePair(ctx, r.pair)
	r.pair = guest.Pair{}
	return err
}

// Replay drives p to sync point j, recording calls at the given function
// entries on the way. A side that does not get there gives an error
// wrapping ErrNotReplayed; a QEMU that fails, an infrastructure error.
func Replay(ctx context.Context, e *engine.Engine, p guest.Pair, j int, trace [2]map[uint64]string) ([2]engine.Arrival, error) {
	arr, err := e.Reach(ctx, p, j, trace)
	if err != nil {
		return arr, guest.Infra(fmt.Errorf("localisation replay: %w", err))
	}
	if !arr[0].Reached() || !arr[1].Reached() {
		return arr, fmt.Errorf("%w: sync point %d (a %s; b %s)", ErrNotReplayed, j+1, arr[0].Detail, arr[1].Detail)
	}
	return arr, nil
}

// Snapshot rewinds the run's own guests by restoring the VM snapshots
// taken at sync points (see SaveBoth). The guests must hold a snapshot of
// the sync point they stand at (Here), so that Close can put them back.
type Snapshot struct {
	Pair guest.Pair
	// Here is the sync point the guests stand at, saved by the caller.
	Here int
	Log  func(format string, args ...any)
	// Engine, when set, re-applies the injections of the restored sync
	// point (the snapshot was saved before them).
	Engine *engine.Engine
}

// At restores the snapshot of sync point j.
func (s *Snapshot) At(ctx context.Context, j int) (guest.Pair, error) {
	t0 := time.Now()
	if err := restore(ctx, s.Pair, j); err != nil {
		// The guests may be anywhere now.
		return guest.Pair{}, guest.Infra(fmt.Errorf("localisation: %w", err))
	}
	if s.Log != nil {
		s.Log("checkpoint: restored sync point %d in %s", j+1, time.Since(t0).Round(time.Millisecond))
	}
	if s.Engine != nil {
		s.Engine.RestoreInjections(s.Pair, j)
		if err := s.Engine.Reinject(ctx, s.Pair, j); err != nil {
			return guest.Pair{}, guest.Infra(fmt.Errorf("localisation: %w", err))
		}
	}
	return s.Pair, nil
}

// Close returns the guests to the sync point they stood at.
func (s *Snapshot) Close(ctx context.Context) error {
	for _, g := range s.Pair {
		if g.Exited() {
			// The guest's QEMU ended with it: there is nothing to load
			// the snapshot into.
			return guest.Infra(fmt.Errorf("localisation: guest %s exited while localising; it cannot return to sync point %d (use localize.checkpoint: restart)", g.Name(), s.Here+1))
		}
	}
	if err := restore(ctx, s.Pair, s.Here); err != nil {
		return guest.Infra(fmt.Errorf("localisation: back to sync point %d: %w", s.Here+1, err))
	}
	if s.Engine != nil {
		s.Engine.RestoreInjections(s.Pair, s.Here)
	}
	return nil
}
