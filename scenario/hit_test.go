package scenario

import (
	"slices"
	"testing"
)

// TestHitTotal checks hit_total, an arrival counted from boot: converted
// to the hit counted from the previous point when every earlier point
// breaks at the same place at its entry, refused otherwise.
func TestHitTotal(t *testing.T) {
	t.Parallel()
	const head = "name: t\nguests:\n  defaults: {kernel: k.elf}\n  a: {}\n  b: {}\nsync:\n"
	tests := []struct {
		name string
		sync string
		hits []int // the hits run to; nil: an error
		want []string
	}{
		{"first point: the same as hit", "  - {break: checksum, hit_total: 3}\n", []int{3}, nil},
		{"after hits at the same place", "  - {break: checksum, hit: 3}\n  - {break: checksum, hit_total: 5}\n", []int{3, 2}, nil},
		{"a chain of totals", "  - {break: checksum, hit_total: 2}\n  - {break: checksum, hit_total: 3}\n  - {break: checksum, hit_total: 7}\n",
			[]int{2, 1, 4}, nil},
		{"addresses", "  - {break: '0x1000', hit: 2}\n  - {break: '0x1000', hit_total: 4}\n", []int{2, 2}, nil},
		{"same arrival as the previous point", "  - {break: checksum, hit: 3}\n  - {break: checksum, hit_total: 3}\n", nil,
			[]string{`8:34: sync[1].hit_total: arrival 3 at checksum from boot is not after the previous sync point, which is arrival 3`}},
		{"an earlier point elsewhere", "  - {break: kmain}\n  - {break: checksum, hit_total: 5}\n", nil,
			[]string{`8:34: sync[1].hit_total: counting from boot needs every earlier sync point to break at checksum at its entry, and sync[0] breaks at kmain`}},
		{"an earlier return point", "  - {break: checksum, at: return}\n  - {break: checksum, hit_total: 5}\n", nil,
			[]string{`8:34: sync[1].hit_total: counting from boot needs every earlier sync point to break at checksum at its entry, and sync[0] breaks at checksum (at: return)`}},
		{"an offset is another place", "  - {break: checksum}\n  - {break: checksum+4, hit_total: 5}\n", nil,
			[]string{`8:36: sync[1].hit_total: counting from boot needs`}},
		{"both forms", "  - {break: checksum, hit: 2, hit_total: 5}\n", nil,
			[]string{`7:42: sync[0]: give hit (counted from the previous sync point) or hit_total (counted from boot), not both`}},
		{"zero", "  - {break: checksum, hit_total: 0}\n", nil,
			[]string{`7:34: sync[0].hit_total: 0 is out of range`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := parse("t.yaml", []byte(head+tc.sync), noEnv)
			if tc.hits == nil {
				checkErrors(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var hits []int
			for _, sp := range s.Sync {
				hits = append(hits, sp.Hit)
			}
			if !slices.Equal(hits, tc.hits) {
				t.Errorf("hits %v, want %v", hits, tc.hits)
			}
		})
	}
}
