package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
)

// ErrNoStats is returned by Stats when the accelerator exposes no
// statistics through QMP query-stats (TCG in QEMU 7.2 and later: the
// schema is empty; QEMU before 7.1 has no query-stats at all).
var ErrNoStats = errors.New("no query-stats counters")

// statsSchema is one provider/target of query-stats-schemas.
type statsSchema struct {
	Provider string `json:"provider"`
	Target   string `json:"target"`
	Stats    []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"stats"`
}

// statsResult is one element of query-stats's reply.
type statsResult struct {
	Provider string `json:"provider"`
	QOMPath  string `json:"qom-path"`
	Stats    []struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	} `json:"stats"`
}

// Stats reads the cumulative counters of the given query-stats targets
// ("vcpu", "vm"), named "target.counter"; vCPU counters are summed over
// the vCPUs. Instant and peak values and histograms are left out: only a
// cumulative counter has a meaningful delta between two sync points.
func (g *Guest) Stats(ctx context.Context, targets []string) (compare.Counters, error) {
	if g.cumulative == nil {
		var schemas []statsSchema
		if err := g.M.QMP(ctx, "query-stats-schemas", nil, &schemas); err != nil {
			return nil, fmt.Errorf("guest %s: query-stats-schemas: %w (%w)", g.Name(), ErrNoStats, err)
		}
		g.cumulative = cumulativeOf(schemas)
	}
	if len(g.cumulative) == 0 {
		return nil, fmt.Errorf("guest %s (%s): %w", g.Name(), g.Spec.Accel, ErrNoStats)
	}
	out := compare.Counters{}
	for _, t := range targets {
		var res []statsResult
		if err := g.M.QMP(ctx, "query-stats", map[string]any{"target": t}, &res); err != nil {
			return nil, fmt.Errorf("guest %s: query-stats %s: %w", g.Name(), t, err)
		}
		if err := addStats(out, t, res, g.cumulative); err != nil {
			return nil, fmt.Errorf("guest %s: query-stats %s: %w", g.Name(), t, err)
		}
	}
	return out, nil
}

// cumulativeOf returns the cumulative counters of query-stats-schemas's
// reply, as "target.counter".
func cumulativeOf(schemas []statsSchema) map[string]bool {
	out := map[string]bool{}
	for _, s := range schemas {
		for _, st := range s.Stats {
			if st.Type == "cumulative" && s.Target != "" && st.Name != "" {
				out[s.Target+"."+st.Name] = true
			}
		}
	}
	return out
}

// addStats adds the cumulative counters of one query-stats reply to out.
// A value that is not an unsigned integer, or a sum over the vCPUs past
// 64 bits, is an error: a delta of it would be meaningless.
func addStats(out compare.Counters, target string, res []statsResult, cumulative map[string]bool) error {
	for _, r := range res {
		for _, st := range r.Stats {
			name := target + "." + st.Name
			if !cumulative[name] {
				continue
			}
			var v uint64
			if err := json.Unmarshal(st.Value, &v); err != nil {
				return fmt.Errorf("counter %s: value %.40s is not an unsigned integer", name, st.Value)
			}
			if out[name]+v < out[name] {
				return fmt.Errorf("counter %s: the sum over the vCPUs overflows 64 bits", name)
			}
			out[name] += v
		}
	}
	return nil
}
