package guest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Pair is the two guests of a comparison, a and b.
type Pair [2]*Guest

// Each runs fn on both guests concurrently and returns the first error;
// the context passed to fn is cancelled when either fails.
func (p Pair) Each(ctx context.Context, fn func(ctx context.Context, i int, g *Guest) error) error {
	eg, ectx := errgroup.WithContext(ctx)
	for i, g := range p {
		eg.Go(func() error { return fn(ectx, i, g) })
	}
	return eg.Wait()
}

// Close tears both guests down; it never leaves a QEMU running.
func (p Pair) Close(ctx context.Context) error {
	var errs []error
	for _, g := range p {
		if g != nil {
			errs = append(errs, g.Close(ctx))
		}
	}
	return errors.Join(errs...)
}

// Steps is the number of single steps taken on both sides.
func (p Pair) Steps() int {
	n := 0
	for _, g := range p {
		if g != nil {
			n += g.Steps
		}
	}
	return n
}

// LaunchPair starts both guests concurrently with launcher l, with tag
// suffix (e.g. "-localise") on their files. On failure whatever started is
// torn down.
func LaunchPair(ctx context.Context, l Launcher, specs [2]scenario.Guest, syms [2]*symbols.Table, suffix string) (Pair, error) {
	var p Pair
	// The guests live as long as ctx: not an errgroup context, which ends
	// when both have started.
	var eg errgroup.Group
	for i := range p {
		eg.Go(func() error {
			cfg := Config{Side: i, Spec: specs[i], Syms: syms[i]}
			if suffix != "" {
				cfg.Tag = scenario.SideNames[i] + suffix
			}
			g, err := l.Launch(ctx, cfg)
			p[i] = g
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		dead, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancel()
		p.Close(dead)
		return Pair{}, Infra(err)
	}
	return p, nil
}

// ApplySstep sets the single-step mask of g to what want asks for, where
// the accelerator supports it, and returns notes about the rest.
func (g *Guest) ApplySstep(ctx context.Context, want []string) ([]string, error) {
	bits, err := g.T.SstepBits(ctx)
	if errors.Is(err, rsp.ErrUnsupported) {
		return []string{fmt.Sprintf("guest %s: the gdbstub has no qqemu.sstepbits; stepping semantics are the stub's own", g.Name())}, nil
	}
	if err != nil {
		return nil, g.fail(ctx, fmt.Errorf("sstepbits: %w", err))
	}
	var notes []string
	mask := bits["ENABLE"]
	for _, name := range []string{scenario.SstepNoIRQ, scenario.SstepNoTimer} {
		if !slices.Contains(want, name) {
			continue
		}
		bit, ok := bits[strings.ToUpper(name)]
		if !ok {
			notes = append(notes, fmt.Sprintf("guest %s: sstep %s unsupported under %s; not applied", g.Name(), name, g.Spec.Accel))
			continue
		}
		mask |= bit
	}
	if g.IsAttached() && !g.sstepSet {
		// The mask outlives the connection: put it back when detaching.
		if r, ok := g.T.(interface {
			Sstep(context.Context) (uint64, error)
		}); ok {
			cur, err := r.Sstep(ctx)
			if err != nil {
				return notes, g.fail(ctx, fmt.Errorf("sstep: %w", err))
			}
			g.sstep, g.sstepSet = cur, true
		}
	}
	if err := g.T.SetSstep(ctx, mask); err != nil {
		return notes, g.fail(ctx, fmt.Errorf("set sstep %#x: %w", mask, err))
	}
	return notes, nil
}
