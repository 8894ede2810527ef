package compare

import (
	"encoding/binary"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mem(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func with(b []byte, edits ...int) []byte {
	c := append([]byte(nil), b...)
	for _, off := range edits {
		c[off] ^= 0xff
	}
	return c
}

func TestMemoryRows(t *testing.T) {
	t.Parallel()
	base := mem(256) // 16 rows
	type row struct {
		off, skipped int
	}
	tests := []struct {
		name      string
		a, b      []byte
		ctx       int
		want      []row // rows: Skipped>0 for collapsed
		diffBytes int
		first     int
	}{
		{"equal", base, mem(256), 0, nil, 0, 0},
		{"one byte in the middle, default context", base, with(base, 0x75), 0,
			[]row{{0, 6}, {0x60, 0}, {0x70, 0}, {0x80, 0}, {0x90, 7}}, 1, 0x75},
		{"no context", base, with(base, 0x75), -1,
			[]row{{0, 7}, {0x70, 0}, {0x80, 8}}, 1, 0x75},
		{"context 2 at the start", base, with(base, 0, 1), 2,
			[]row{{0, 0}, {0x10, 0}, {0x20, 0}, {0x30, 13}}, 2, 0},
		{"two close diffs merge context", base, with(base, 0x28, 0x48), 0,
			[]row{{0, 1}, {0x10, 0}, {0x20, 0}, {0x30, 0}, {0x40, 0}, {0x50, 0}, {0x60, 10}}, 2, 0x28},
		{"last row partial", mem(20), with(mem(20), 19), 0,
			[]row{{0, 0}, {0x10, 0}}, 1, 19},
		{"b shorter", mem(32), mem(24), 0,
			[]row{{0, 0}, {0x10, 0}}, 8, 24},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := Memory("results", "virtual", [2]uint64{0x1000, 0x1000}, tc.a, tc.b, MemOptions{Context: tc.ctx})
			if tc.want == nil {
				if d != nil {
					t.Fatalf("Memory() = %+v, want nil", d)
				}
				return
			}
			if d == nil {
				t.Fatal("Memory() = nil, want a diff")
			}
			var got []row
			for _, r := range d.Rows {
				got = append(got, row{r.Offset, r.Skipped})
				if r.Skipped == 0 && len(r.Diff) != max(len(r.A), len(r.B))/2 {
					t.Errorf("row %#x: %d diff marks for %q/%q", r.Offset, len(r.Diff), r.A, r.B)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows = %v, want %v", got, tc.want)
			}
			if d.DiffBytes != tc.diffBytes || d.FirstOffset != tc.first || d.Length != max(len(tc.a), len(tc.b)) {
				t.Errorf("DiffBytes %d FirstOffset %#x Length %d; want %d %#x", d.DiffBytes, d.FirstOffset, d.Length, tc.diffBytes, tc.first)
			}
		})
	}
}

func TestMemoryRowContent(t *testing.T) {
	t.Parallel()
	a := mem(16)
	b := with(a, 3)
	d := Memory("x", "physical", [2]uint64{0x100000, 0x100000}, a, b, MemOptions{})
	if d == nil || len(d.Rows) != 1 {
		t.Fatalf("Memory() = %+v", d)
	}
	r := d.Rows[0]
	if r.A != "000102030405060708090a0b0c0d0e0f" || r.B != "000102fc0405060708090a0b0c0d0e0f" {
		t.Errorf("row A %q B %q", r.A, r.B)
	}
	for i, x := range r.Diff {
		if x != (i == 3) {
			t.Errorf("Diff[%d] = %v", i, x)
		}
	}
	if d.Space != "physical" || d.Name != "x" {
		t.Errorf("Name/Space = %q/%q", d.Name, d.Space)
	}
}

func TestMemoryPointers(t *testing.T) {
	t.Parallel()
	sym := [2]SymbolizeFunc{layout(0x1000), layout(0x1100)}
	ptrs := func(vals ...uint64) []byte {
		b := make([]byte, 8*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint64(b[8*i:], v)
		}
		return b
	}
	tests := []struct {
		name      string
		a, b      []byte
		addr      [2]uint64
		ptr       int
		diffBytes int // 0: equal
	}{
		{"layout shift equal", ptrs(0x1008, 7, 0x1030), ptrs(0x1108, 7, 0x1130), [2]uint64{0x8000, 0x9000}, 8, 0},
		{"different offset", ptrs(0x1008, 7), ptrs(0x1110, 7), [2]uint64{0x8000, 0x9000}, 8, 2},
		{"no ptrsize: raw", ptrs(0x1008), ptrs(0x1108), [2]uint64{0x8000, 0x9000}, 0, 1},
		{"unaligned on b: raw", ptrs(0x1008), ptrs(0x1108), [2]uint64{0x8000, 0x9004}, 8, 1},
		{"pointer and data change", ptrs(0x1008, 7), ptrs(0x1108, 8), [2]uint64{0x8000, 0x9000}, 8, 1},
		{"4-byte pointers", []byte{0x08, 0x10, 0, 0}, []byte{0x08, 0x11, 0, 0}, [2]uint64{0x8000, 0x9000}, 4, 0},
	}
	for _, tc := range tests {
		d := Memory("m", "virtual", tc.addr, tc.a, tc.b, MemOptions{PtrSize: tc.ptr, Symbolize: sym})
		switch {
		case tc.diffBytes == 0 && d != nil:
			t.Errorf("%s: Memory() = %+v, want nil", tc.name, d)
		case tc.diffBytes != 0 && d == nil:
			t.Errorf("%s: Memory() = nil, want a diff", tc.name)
		case d != nil && d.DiffBytes != tc.diffBytes:
			t.Errorf("%s: DiffBytes = %d, want %d", tc.name, d.DiffBytes, tc.diffBytes)
		}
	}
}

func TestMemorySummary(t *testing.T) {
	t.Parallel()
	a := mem(64)
	b := with(a, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f)
	got := MemorySummary(Memory("results", "virtual", [2]uint64{}, a, b, MemOptions{}))
	if want := "results: 8 bytes differ (first at +0x28)"; got != want {
		t.Errorf("MemorySummary() = %q, want %q", got, want)
	}
	got = MemorySummary(Memory("r", "virtual", [2]uint64{}, a, with(a, 0), MemOptions{}))
	if !strings.Contains(got, "1 byte differs (first at +0x0)") {
		t.Errorf("MemorySummary() = %q", got)
	}
	if MemorySummary(nil) != "" {
		t.Error("MemorySummary(nil) != \"\"")
	}
}

func TestMemoryWords(t *testing.T) {
	t.Parallel()
	a := make([]byte, 64)
	tests := []struct {
		name  string
		diffs []int
		limit int
		want  []int
	}{
		{"none", nil, 16, nil},
		{"one byte", []int{9}, 16, []int{8}},
		{"two bytes of one word", []int{8, 15}, 16, []int{8}},
		{"adjacent words", []int{0, 8}, 16, []int{0, 8}},
		{"apart", []int{3, 40, 63}, 16, []int{0, 40, 56}},
		{"limited", []int{3, 40, 63}, 2, []int{0, 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := slices.Clone(a)
			for _, o := range tt.diffs {
				b[o] = 1
			}
			md := Memory("m", "virtual", [2]uint64{0x1000, 0x1000}, a, b, MemOptions{PtrSize: 8})
			var got []int
			if md != nil {
				got = md.Words(8, tt.limit)
				if !slices.Equal(md.Offsets(), tt.diffs) {
					t.Errorf("Offsets %v, want %v", md.Offsets(), tt.diffs)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Words %v, want %v", got, tt.want)
			}
		})
	}
}
