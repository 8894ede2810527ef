package scenario

import (
	"reflect"
	"testing"
)

func TestStatsDecode(t *testing.T) {
	t.Parallel()
	const doc = minimal + `  - break: done
    compare: {stats: none}
  - break: again
    compare:
      stats: {targets: [vcpu], counters: ["*exits"], tolerance: {ratio: 1.5, absolute: 10}, top: 3}
compare:
  stats: {}
`
	s, err := parse("t.yaml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	def := &StatsSpec{Targets: []string{StatsVCPU, StatsVM}, Ratio: DefaultStatsRatio, Absolute: DefaultStatsAbsolute,
		Top: DefaultStatsTop}
	tests := []struct {
		k    int
		want *StatsSpec
	}{
		{0, def}, // inherited from the top level
		{1, nil}, // turned off
		{2, &StatsSpec{Targets: []string{StatsVCPU}, Counters: []string{"*exits"}, Ratio: 1.5, Absolute: 10, Top: 3}},
	}
	for _, tt := range tests {
		got := s.Sync[tt.k].Compare.Stats
		if got != nil {
			c := *got
			c.Pos = Position{}
			got = &c
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("sync[%d].compare.stats = %+v, want %+v", tt.k, got, tt.want)
		}
	}
	if !s.WantsStats() {
		t.Error("WantsStats false")
	}
	if s, err := parse("t.yaml", []byte(minimal), noEnv); err != nil || s.WantsStats() {
		t.Errorf("minimal: WantsStats %v, err %v", s.WantsStats(), err)
	}
}

func TestStatsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad target", minimal + "compare: {stats: {targets: [vm, disk]}}\n",
			[]string{`8:33: compare.stats.targets[1]: want vcpu or vm, got "disk"`}},
		{"empty targets", minimal + "compare: {stats: {targets: []}}\n",
			[]string{`8:28: compare.stats.targets: name vcpu, vm or both`}},
		{"ratio below 1", minimal + "compare: {stats: {tolerance: {ratio: 0.5}}}\n",
			[]string{`8:38: compare.stats.tolerance.ratio: "0.5" is not a ratio >= 1`}},
		{"bad absolute", minimal + "compare: {stats: {tolerance: {absolute: -3}}}\n",
			[]string{`8:41: compare.stats.tolerance.absolute: "-3" is not an unsigned integer`}},
		{"unknown key", minimal + "compare: {stats: {tolerence: {}}}\n",
			[]string{`8:19: unknown field "tolerence" (did you mean "tolerance"?)`}},
		{"bad glob", minimal + "compare: {stats: {counters: [\"[x\"]}}\n",
			[]string{`8:30: compare.stats.counters[0]: bad glob`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse("t.yaml", []byte(tc.yaml), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}
