package localize

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Checkpoints (docs/checkpoints.md). Localisation needs both guests back at
// sync point k-1 after sync point k diverged. It can relaunch both and
// replay from boot ("restart"), or restore a VM snapshot taken when the
// guests stood at k-1 ("snapshot").

// AutoMinReplay is the threshold of localize.checkpoint: auto. A snapshot
// is saved at a sync point only when getting there from boot took at least
// this long: below it a relaunch plus replay costs less than the saves at
// every point, most of which are never restored.
const AutoMinReplay = 1 * time.Second

// ErrNoCheckpoint means no snapshot of the wanted sync point exists.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Tag names the snapshot taken at sync point k (0-based).
func Tag(k int) string { return fmt.Sprintf("lockstep-sync%d", k+1) }

// Mode returns the scenario's localize.checkpoint, "auto" when unset.
func Mode(sc *scenario.Scenario) string {
	if m := sc.Localize.Checkpoint; m != "" {
		return m
	}
	return scenario.CheckpointAuto
}

// WantCheckpoint reports whether sync point k, which both sides reached,
// should be saved: localisation is on, the mode asks for snapshots, and
// under auto the run took long enough (elapsed) to get there that a replay
// would cost more than the saves.
func WantCheckpoint(sc *scenario.Scenario, k int, elapsed time.Duration) bool {
	if !sc.Localize.Enabled || k >= len(sc.Sync)-1 {
		// The last sync point is never the k-1 of a localisation.
		return false
	}
	switch Mode(sc) {
	case scenario.CheckpointRestart:
		return false
	case scenario.CheckpointSnapshot:
		return true
	}
	return elapsed >= AutoMinReplay
}

// HasBoth reports whether both guests hold the snapshot of sync point k.
func HasBoth(ctx context.Context, p guest.Pair, k int) bool {
	for _, g := range p {
		if ok, err := g.HasSnapshot(ctx, Tag(k)); err != nil || !ok {
			return false
		}
	}
	return true
}

// SaveBoth saves both guests of p as the snapshot of sync point k, unless
// they hold it already, and drops the snapshot of k-2, which no
// localisation can use any more.
func SaveBoth(ctx context.Context, p guest.Pair, k int) error {
	if HasBoth(ctx, p, k) {
		return nil
	}
	err := p.Each(ctx, func(ctx context.Context, _ int, g *guest.Guest) error {
		return g.Save(ctx, Tag(k))
	})
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if k >= 2 {
		for _, g := range p {
			// Best effort: a stale snapshot only costs disk space.
			g.Drop(ctx, Tag(k-2))
		}
	}
	return nil
}

// restore loads the snapshot of sync point k into both guests of p. It
// wraps ErrNoCheckpoint when a side has no such snapshot.
func restore(ctx context.Context, p guest.Pair, k int) error {
	for _, g := range p {
		ok, err := g.HasSnapshot(ctx, Tag(k))
		if err != nil {
			return fmt.Errorf("restore checkpoint: %w", err)
		}
		if !ok {
			return fmt.Errorf("restore checkpoint: guest %s, sync point %d: %w", g.Name(), k+1, ErrNoCheckpoint)
		}
	}
	err := p.Each(ctx, func(ctx context.Context, _ int, g *guest.Guest) error {
		return g.Load(ctx, Tag(k))
	})
	if err != nil {
		return fmt.Errorf("restore checkpoint: %w", err)
	}
	return nil
}

// Restore loads the snapshot of sync point k into both guests of p
// (tests and benchmarks).
func Restore(ctx context.Context, p guest.Pair, k int) error { return restore(ctx, p, k) }
