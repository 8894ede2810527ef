package compare

import (
	"strings"
	"testing"
)

func TestStatDiffers(t *testing.T) {
	tests := []struct {
		a, b     uint64
		ratio    float64
		absolute uint64
		want     bool
	}{
		{17, 20230, 2, 1000, true},     // the port-write loop
		{20230, 17, 2, 1000, true},     // either direction
		{0, 302, 2, 1000, false},       // within the absolute bound
		{12307, 12537, 2, 1000, false}, // within the ratio
		{1000, 3001, 2, 1000, true},
		{1000, 2000, 2, 0, false}, // exactly the ratio is within it
		{1000, 2001, 2, 0, true},
		{5, 5, 1, 0, false},
		{0, 1, 1, 0, true},
	}
	for _, tt := range tests {
		if got := StatDiffers(tt.a, tt.b, tt.ratio, tt.absolute); got != tt.want {
			t.Errorf("StatDiffers(%d, %d, %g, %d) = %v, want %v", tt.a, tt.b, tt.ratio, tt.absolute, got, tt.want)
		}
	}
}

func TestStatsTable(t *testing.T) {
	a := Counters{"vcpu.exits": 17, "vcpu.io_exits": 16, "vcpu.halt_exits": 0, "vcpu.req_event": 1,
		"vm.remote_tlb_flush": 9, "vcpu.only_a": 5000}
	b := Counters{"vcpu.exits": 20230, "vcpu.io_exits": 20016, "vcpu.halt_exits": 0, "vcpu.req_event": 75,
		"vm.remote_tlb_flush": 9, "vcpu.only_b": 7}
	tab := Stats(a, b, StatsOptions{Ratio: 2, Absolute: 1000, Top: 3})
	if tab.Compared != 5 || tab.Moved != 4 {
		t.Errorf("compared %d moved %d, want 5 and 4 (counters on one side only are not compared)", tab.Compared, tab.Moved)
	}
	var names []string
	for _, r := range tab.Rows {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "vcpu.exits vcpu.io_exits vcpu.req_event" {
		t.Errorf("rows %q, want the differing ones, largest first, then the top movers", got)
	}
	if d := tab.Differing(); len(d) != 2 || d[1].Delta != [2]uint64{16, 20016} {
		t.Errorf("differing %+v", d)
	}
	tab.Since = "sync 1"
	if s := StatsSummary(tab); s != "vcpu.exits: 17 vs 20230 since sync 1 (and 1 other counter)" {
		t.Errorf("summary %q", s)
	}
	// Every differing counter is kept even past Top.
	if tab := Stats(a, b, StatsOptions{Ratio: 2, Absolute: 1000, Top: 1}); len(tab.Rows) != 2 {
		t.Errorf("top 1 kept %d rows, want both differing ones", len(tab.Rows))
	}
	// A selection by glob, with or without the target.
	for _, g := range [][]string{{"io_*"}, {"vcpu.io_exits"}} {
		tab := Stats(a, b, StatsOptions{Counters: g, Ratio: 2, Absolute: 1000, Top: 10})
		if tab.Compared != 1 || len(tab.Rows) != 1 || tab.Rows[0].Name != "vcpu.io_exits" {
			t.Errorf("counters %v: %+v", g, tab)
		}
	}
	if s := StatsSummary(Stats(a, a, StatsOptions{Ratio: 2, Top: 10})); s != "" {
		t.Errorf("identical counters summarised as %q", s)
	}
}

func TestCountersDelta(t *testing.T) {
	d := Counters{"x": 10, "y": 3, "z": 4}.Delta(Counters{"x": 4, "y": 5})
	if d["x"] != 6 || d["y"] != 3 || d["z"] != 4 {
		t.Errorf("delta %v, want x 6, y 3 (reset: from zero), z 4 (new)", d)
	}
}
