package scenario

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Targets of compare.stats: QMP query-stats targets.
const (
	StatsVCPU = "vcpu"
	StatsVM   = "vm"
)

// Defaults of compare.stats.
const (
	// DefaultStatsRatio: a counter differs when the larger delta exceeds
	// twice the smaller one...
	DefaultStatsRatio = 2.0
	// DefaultStatsAbsolute: ...and the deltas differ by more than this.
	DefaultStatsAbsolute = 1000
	// DefaultStatsTop is how many counters a report shows per sync point.
	DefaultStatsTop = 10
)

// StatsSpec compares the accelerator's statistics (QMP query-stats: KVM's
// exit counts and more) between two consecutive sync points. A nil
// *StatsSpec compares none.
type StatsSpec struct {
	// Targets are StatsVCPU and/or StatsVM; vCPU counters are summed over
	// the vCPUs.
	Targets []string
	// Counters are path.Match globs of counter names ("io_exits",
	// "*exits"); empty means every cumulative counter.
	Counters []string
	// Ratio and Absolute are the tolerance: a counter differs only when
	// max(Δa, Δb) > Ratio × min(Δa, Δb) and |Δa − Δb| > Absolute.
	Ratio    float64
	Absolute uint64
	// Top is how many counters, those that moved most, a report shows.
	Top int
	Pos Position
}

func validStatsTarget(s string) string {
	if s != StatsVCPU && s != StatsVM {
		return "want vcpu or vm, got " + quote(s)
	}
	return ""
}

// decodeStats decodes compare.stats.
func (b *builder) decodeStats(p string, v *yaml.Node) (*StatsSpec, bool) {
	d := b.d
	st := &StatsSpec{Targets: []string{StatsVCPU, StatsVM}, Ratio: DefaultStatsRatio,
		Absolute: DefaultStatsAbsolute, Top: DefaultStatsTop, Pos: d.at(v)}
	n := len(d.errs.errs)
	d.mapping(p, v, map[string]fieldFunc{
		"targets": func(p string, _, v *yaml.Node) {
			if l, ok := d.strList(p, v, validStatsTarget); ok {
				if len(l) == 0 {
					d.errorf(v, "%s: name vcpu, vm or both", p)
					return
				}
				st.Targets = l
			}
		},
		"counters": func(p string, _, v *yaml.Node) {
			st.Counters, _ = d.strList(p, v, validGlob)
		},
		"tolerance": func(p string, _, v *yaml.Node) {
			d.mapping(p, v, map[string]fieldFunc{
				"ratio": func(p string, _, v *yaml.Node) {
					s, ok := d.str(p, v)
					if !ok {
						return
					}
					f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
					if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 1 {
						d.errorf(v, "%s: %q is not a ratio >= 1 (2 means one side may count up to twice the other)", p, s)
						return
					}
					st.Ratio = f
				},
				"absolute": func(p string, _, v *yaml.Node) {
					if u, ok := d.uint(p, v); ok {
						st.Absolute = u
					}
				},
			})
		},
		"top": func(p string, _, v *yaml.Node) {
			if t, ok := d.int(p, v, 1, 1000); ok {
				st.Top = t
			}
		},
	})
	return st, len(d.errs.errs) == n
}

// WantsStats reports whether any sync point compares statistics.
func (s *Scenario) WantsStats() bool {
	for _, sp := range s.Sync {
		if sp.Compare.Stats != nil {
			return true
		}
	}
	return false
}
