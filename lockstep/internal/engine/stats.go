package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// stats reads both sides' accelerator statistics at sync point k, which
// both reached, and compares their deltas since the previous point that
// read them when k asks for it. Statistics are read at every sync point of
// a scenario that compares them anywhere, so that a delta always spans
// two consecutive points. A side without counters (TCG) is noted once and
// the comparison is recorded as not made: never a silent pass.
func (e *Engine) stats(ctx context.Context, p guest.Pair, k int, sp *scenario.SyncPoint) (t *compare.StatsTable, divs []compare.Divergence, uncompared []string, err error) {
	if !e.sc.WantsStats() {
		return nil, nil, nil, nil
	}
	targets := []string{scenario.StatsVCPU, scenario.StatsVM}
	var cur, delta [2]compare.Counters
	var since [2]string
	var missing [2]error
	// An attached QEMU's counters run since it started, whenever that
	// was: its first reading is a baseline, not a delta to compare.
	var baseline [2]bool
	for i, g := range p {
		baseline[i] = g.IsAttached() && g.StatsSince == ""
	}
	err = p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		c, err := g.Stats(ctx, targets)
		if errors.Is(err, guest.ErrNoStats) {
			missing[i] = err
			return nil
		}
		if err != nil {
			return err
		}
		cur[i] = c
		since[i] = g.StatsSince
		if since[i] == "" {
			since[i] = "boot"
		}
		delta[i] = c.Delta(g.StatsBase)
		g.StatsBase, g.StatsSince = c, fmt.Sprintf("sync %d", k+1)
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if sp.Compare.Stats == nil {
		return nil, nil, nil, nil
	}
	for i, g := range p {
		switch {
		case missing[i] == nil:
		case g.Spec.Accel == scenario.AccelTCG:
			e.note("stats not compared: guest %s runs under tcg, where QEMU offers no query-stats counters "+
				"(KVM exit statistics exist only under kvm; TCG's 'info jit' has translation-cache figures, not guest exits)",
				g.Name())
		default:
			e.note("stats not compared: %v (query-stats needs QEMU 7.1 or later)", missing[i])
		}
	}
	if missing[0] != nil || missing[1] != nil {
		return nil, nil, []string{"stats"}, nil
	}
	if baseline[0] || baseline[1] {
		later := false
		for _, q := range e.sc.Sync[k+1:] {
			later = later || q.Compare.Stats != nil
		}
		if later {
			e.note("sync point %d: stats not compared: an attached QEMU's counters count from when it started, not from a point both sides share; they are compared as deltas from this point on", k+1)
			return nil, nil, nil, nil
		}
		e.note("sync point %d: stats not compared: an attached QEMU's counters count from when it started, not from a point both sides share; add a later sync point to compare the deltas from this one", k+1)
		return nil, nil, []string{"stats"}, nil
	}
	st := sp.Compare.Stats
	t = compare.Stats(only(delta[0], st.Targets), only(delta[1], st.Targets),
		compare.StatsOptions{Counters: st.Counters, Ratio: st.Ratio, Absolute: st.Absolute, Top: st.Top})
	t.Since = since[0]
	if t.Compared == 0 {
		e.note("sync point %d: stats: no counter matches %v on both sides; nothing compared", k+1, st.Counters)
		return t, nil, []string{"stats"}, nil
	}
	if s := compare.StatsSummary(t); s != "" {
		divs = append(divs, e.At(k, compare.Divergence{Kind: compare.KindStats, Summary: s, Stats: t}))
	}
	return t, divs, nil, nil
}

// only keeps the counters of the given targets ("vcpu" keeps "vcpu.*").
func only(c compare.Counters, targets []string) compare.Counters {
	out := compare.Counters{}
	for n, v := range c {
		for _, t := range targets {
			if len(n) > len(t) && n[:len(t)] == t && n[len(t)] == '.' {
				out[n] = v
			}
		}
	}
	return out
}
