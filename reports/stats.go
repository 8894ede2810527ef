package reports

import (
	"fmt"
	"strconv"

	"github.com/lockstep-dev/lockstep/compare"
)

// statsRow is one counter of a statistics table as every format shows it.
type statsRow struct {
	Name, A, B string
	// Change is b − a as a signed count; Ratio is the larger delta over
	// the smaller ("×1181.0", "only b" when the smaller is 0).
	Change, Ratio string
	Differs       bool
}

// statsCaption says what a statistics table holds.
func statsCaption(t *compare.StatsTable) string {
	return fmt.Sprintf("counter deltas since %s: %d compared, %d moved; differs beyond ×%s and ±%d",
		t.Since, t.Compared, t.Moved, strconv.FormatFloat(t.Ratio, 'g', -1, 64), t.Absolute)
}

// statsRows lays a statistics table out, the counters that moved most first.
func statsRows(t *compare.StatsTable) []statsRow {
	out := make([]statsRow, 0, len(t.Rows))
	for _, r := range t.Rows {
		a, b := r.Delta[0], r.Delta[1]
		var change string
		if b >= a {
			change = "+" + strconv.FormatUint(b-a, 10)
		} else {
			change = "-" + strconv.FormatUint(a-b, 10)
		}
		ratio := ""
		switch lo, hi := min(a, b), max(a, b); {
		case lo == hi:
		case lo == 0 && a == 0:
			ratio = "only b"
		case lo == 0:
			ratio = "only a"
		default:
			ratio = "×" + strconv.FormatFloat(float64(hi)/float64(lo), 'f', 1, 64)
		}
		out = append(out, statsRow{Name: r.Name, A: strconv.FormatUint(a, 10), B: strconv.FormatUint(b, 10),
			Change: change, Ratio: ratio, Differs: r.Differs})
	}
	return out
}
