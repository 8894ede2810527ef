package calibrate

import (
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/scenario"
)

func TestMergeNoise(t *testing.T) {
	tests := []struct {
		name string
		a, b scenario.Noise
		want scenario.Noise
	}{
		{name: "empty"},
		{name: "registers once, case-insensitively",
			a:    scenario.Noise{Registers: []string{"rdi", "eflags.ZF"}},
			b:    scenario.Noise{Registers: []string{"RDI", "rax"}},
			want: scenario.Noise{Registers: []string{"rdi", "eflags.ZF", "rax"}}},
		{name: "offsets union",
			a:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{3, 1}}}},
			b:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{2, 3}}, {Address: 0x10, HasAddress: true}}},
			want: scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{1, 2, 3}}, {Address: 0x10, HasAddress: true}}}},
		{name: "whole symbol wins",
			a:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s"}}},
			b:    scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s", Offsets: []uint64{2}}}},
			want: scenario.Noise{Memory: []scenario.NoiseMemory{{Symbol: "s"}}}},
		{name: "callpath",
			a:    scenario.Noise{CallPath: []string{"tick"}},
			b:    scenario.Noise{CallPath: []string{"tock", "tick"}},
			want: scenario.Noise{CallPath: []string{"tick", "tock"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MergeNoise(tt.a, tt.b); !noiseEqual(got, tt.want) {
				t.Errorf("MergeNoise = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// noiseEqual reports whether a and b hold the same noise, positions aside.
func noiseEqual(a, b scenario.Noise) bool {
	return slices.Equal(a.Registers, b.Registers) && slices.Equal(a.CallPath, b.CallPath) &&
		slices.EqualFunc(a.Memory, b.Memory, func(x, y scenario.NoiseMemory) bool {
			return x.Symbol == y.Symbol && x.HasAddress == y.HasAddress && x.Address == y.Address &&
				slices.Equal(x.Offsets, y.Offsets)
		})
}
