package localize

import (
	"maps"
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/scenario"
)

// TestMemNoise picks a replay probe range's learned noise by symbol or
// address: whole ranges, byte offsets, or none.
func TestMemNoise(t *testing.T) {
	noise := []scenario.NoiseMemory{
		{Symbol: "jiffies"},
		{Symbol: "stats", Offsets: []uint64{8, 9}},
		{Address: 0x1000, HasAddress: true, Offsets: []uint64{3}},
	}
	tests := []struct {
		name  string
		m     scenario.MemoryRange
		offs  []uint64
		whole bool
	}{
		{"whole symbol", scenario.MemoryRange{Symbol: "jiffies", Length: 8}, nil, true},
		{"symbol offsets", scenario.MemoryRange{Symbol: "stats", Length: 16}, []uint64{8, 9}, false},
		{"address offsets", scenario.MemoryRange{Address: 0x1000, HasAddress: true, Length: 4}, []uint64{3}, false},
		{"other address", scenario.MemoryRange{Address: 0x2000, HasAddress: true, Length: 4}, nil, false},
		{"unlisted symbol", scenario.MemoryRange{Symbol: "results", Length: 4}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offs, whole := memNoise(noise, tt.m)
			if got := slices.Sorted(maps.Keys(offs)); whole != tt.whole || !slices.Equal(got, tt.offs) {
				t.Errorf("memNoise = %v, %v; want %v, %v", got, whole, tt.offs, tt.whole)
			}
		})
	}
	if offs, whole := memNoise(nil, tests[0].m); offs != nil || whole {
		t.Errorf("no noise: memNoise = %v, %v", offs, whole)
	}
}
