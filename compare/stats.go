package compare

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Counters are one side's cumulative statistics counters by name
// ("vcpu.io_exits", "vm.remote_tlb_flush"): values since QEMU started, or
// deltas between two sync points.
type Counters map[string]uint64

// Delta returns cur − prev counter by counter. A counter that went
// backwards (a reset) counts from zero.
func (cur Counters) Delta(prev Counters) Counters {
	out := make(Counters, len(cur))
	for n, v := range cur {
		if p := prev[n]; v >= p {
			out[n] = v - p
		} else {
			out[n] = v
		}
	}
	return out
}

// StatsOptions is the tolerance and selection of a statistics comparison.
type StatsOptions struct {
	// Counters are path.Match globs matched against the name without its
	// target ("io_exits") and with it ("vcpu.io_exits"); empty means all.
	Counters []string
	// A counter differs when max(Δa, Δb) > Ratio × min(Δa, Δb) and
	// |Δa − Δb| > Absolute.
	Ratio    float64
	Absolute uint64
	// Top bounds the rows kept; the flagged rows are always kept.
	Top int
}

// StatRow is one counter's deltas on both sides.
type StatRow struct {
	Name  string    `json:"name"` // "vcpu.io_exits"
	Delta [2]uint64 `json:"delta"`
	// Differs marks a counter outside the tolerance.
	Differs bool `json:"differs,omitempty"`
}

// StatsTable is the statistics of both sides between two sync points,
// the counters that moved most first.
type StatsTable struct {
	// Since names the interval: "boot" or "sync 2".
	Since string `json:"since"`
	// Rows are the counters that moved most (every differing one, then
	// the largest other movers up to Top), largest difference first.
	Rows []StatRow `json:"rows"`
	// Compared counts the counters compared; Moved those that moved on
	// either side.
	Compared int `json:"compared"`
	Moved    int `json:"moved"`
	// Ratio and Absolute are the tolerance used.
	Ratio    float64 `json:"ratio"`
	Absolute uint64  `json:"absolute"`
}

// Differing returns the rows outside the tolerance.
func (t *StatsTable) Differing() []StatRow {
	var out []StatRow
	for _, r := range t.Rows {
		if r.Differs {
			out = append(out, r)
		}
	}
	return out
}

// Stats compares two sides' counter deltas. Only counters both sides
// report are compared (a counter one kernel lacks is no divergence).
func Stats(a, b Counters, opt StatsOptions) *StatsTable {
	t := &StatsTable{Ratio: opt.Ratio, Absolute: opt.Absolute}
	var rows []StatRow
	for n, va := range a {
		vb, ok := b[n]
		if !ok || !statSelected(n, opt.Counters) {
			continue
		}
		t.Compared++
		if va == 0 && vb == 0 {
			continue
		}
		t.Moved++
		rows = append(rows, StatRow{Name: n, Delta: [2]uint64{va, vb}, Differs: StatDiffers(va, vb, opt.Ratio, opt.Absolute)})
	}
	slices.SortFunc(rows, func(x, y StatRow) int {
		if x.Differs != y.Differs {
			if x.Differs {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(absDiff(y.Delta), absDiff(x.Delta)); c != 0 {
			return c
		}
		if c := cmp.Compare(max(y.Delta[0], y.Delta[1]), max(x.Delta[0], x.Delta[1])); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	keep := 0
	for keep < len(rows) && (rows[keep].Differs || keep < opt.Top) {
		keep++
	}
	t.Rows = rows[:keep]
	return t
}

// StatDiffers applies the tolerance to one counter's deltas.
func StatDiffers(a, b uint64, ratio float64, absolute uint64) bool {
	lo, hi := min(a, b), max(a, b)
	return hi-lo > absolute && float64(hi) > ratio*float64(lo)
}

func absDiff(d [2]uint64) uint64 { return max(d[0], d[1]) - min(d[0], d[1]) }

func statSelected(name string, globs []string) bool {
	if len(globs) == 0 {
		return true
	}
	short := name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		short = name[i+1:]
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, short); ok {
			return true
		}
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// StatsSummary is the one-line summary of a statistics divergence.
func StatsSummary(t *StatsTable) string {
	d := t.Differing()
	if len(d) == 0 {
		return ""
	}
	s := fmt.Sprintf("%s: %d vs %d since %s", d[0].Name, d[0].Delta[0], d[0].Delta[1], t.Since)
	if len(d) > 1 {
		s += fmt.Sprintf(" (and %s)", Plural(len(d)-1, "other counter", "other counters"))
	}
	return s
}
