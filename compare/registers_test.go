package compare

import (
	"errors"
	"reflect"
	"testing"
)

var eflagsBits = []FlagBit{
	{"CF", 0, 1}, {"PF", 2, 1}, {"AF", 4, 1}, {"ZF", 6, 1}, {"SF", 7, 1},
	{"TF", 8, 1}, {"IF", 9, 1}, {"DF", 10, 1}, {"OF", 11, 1}, {"IOPL", 12, 2},
	{"NT", 14, 1}, {"RF", 16, 1},
}

var testFlags = map[string][]FlagBit{"eflags": eflagsBits}

func be(v uint64, width int) []byte {
	b := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func regs(kv ...any) Regs {
	r := Regs{Values: map[string][]byte{}}
	for i := 0; i < len(kv); i += 2 {
		n := kv[i].(string)
		r.Names = append(r.Names, n)
		r.Values[n] = kv[i+1].([]byte)
	}
	return r
}

// layout symbolises addresses of two builds where "buf" moved by 0x100.
func layout(base uint64) SymbolizeFunc {
	return func(addr uint64) (Location, bool) {
		if addr >= base && addr < base+0x40 {
			return Location{Addr: addr, Symbol: "buf", Offset: addr - base}, true
		}
		return Location{Addr: addr}, false
	}
}

func TestRegisters(t *testing.T) {
	t.Parallel()
	xmmA := []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00}
	xmmB := append([]byte(nil), xmmA...)
	xmmB[0] = 0x12 // differs only in the top 64 bits
	sym := [2]SymbolizeFunc{layout(0x1000), layout(0x1100)}
	tests := []struct {
		name string
		a, b Regs
		opt  RegOptions
		want []RegisterDiff
	}{
		{
			name: "equal",
			a:    regs("rax", be(1, 8), "rbx", be(2, 8)),
			b:    regs("rax", be(1, 8), "rbx", be(2, 8)),
		},
		{
			name: "one differs, order kept",
			a:    regs("rsi", be(0x5a5a, 8), "rax", be(1, 8), "rdi", be(0, 8)),
			b:    regs("rsi", be(0x5a5b, 8), "rax", be(1, 8), "rdi", be(7, 8)),
			want: []RegisterDiff{
				{Name: "rsi", Values: [2]string{"0x0000000000005a5a", "0x0000000000005a5b"}},
				{Name: "rdi", Values: [2]string{"0x0000000000000000", "0x0000000000000007"}},
			},
		},
		{
			name: "whole register ignored case-insensitively",
			a:    regs("eflags", be(0x246, 4), "rax", be(1, 8)),
			b:    regs("eflags", be(0x202, 4), "rax", be(1, 8)),
			opt:  RegOptions{Ignore: []string{"EFLAGS"}, Flags: testFlags},
		},
		{
			name: "flag bits named",
			a:    regs("eflags", be(0x246, 4)),
			b:    regs("eflags", be(0x203, 4)),
			opt:  RegOptions{Flags: testFlags},
			want: []RegisterDiff{{Name: "eflags", Values: [2]string{"0x00000246", "0x00000203"}, Bits: []string{"CF", "PF", "ZF"}}},
		},
		{
			name: "RF masked away",
			a:    regs("eflags", be(0x10246, 4)),
			b:    regs("eflags", be(0x00246, 4)),
			opt:  RegOptions{Ignore: []string{"eflags.rf"}, Flags: testFlags},
		},
		{
			name: "RF masked, ZF still reported",
			a:    regs("eflags", be(0x10246, 4)),
			b:    regs("eflags", be(0x00206, 4)),
			opt:  RegOptions{Ignore: []string{"eflags.RF"}, Flags: testFlags},
			want: []RegisterDiff{{Name: "eflags", Values: [2]string{"0x00010246", "0x00000206"}, Bits: []string{"ZF"}}},
		},
		{
			name: "multi-bit field IOPL",
			a:    regs("eflags", be(0x3002, 4)),
			b:    regs("eflags", be(0x1002, 4)),
			opt:  RegOptions{Flags: testFlags},
			want: []RegisterDiff{{Name: "eflags", Values: [2]string{"0x00003002", "0x00001002"}, Bits: []string{"IOPL"}}},
		},
		{
			name: "unnamed flag bit differs: reported without Bits",
			a:    regs("eflags", be(0x2, 4)),
			b:    regs("eflags", be(0x0, 4)),
			opt:  RegOptions{Flags: testFlags},
			want: []RegisterDiff{{Name: "eflags", Values: [2]string{"0x00000002", "0x00000000"}}},
		},
		{
			name: "128-bit value keeps all digits",
			a:    regs("xmm0", xmmA),
			b:    regs("xmm0", xmmB),
			want: []RegisterDiff{{Name: "xmm0", Values: [2]string{"0x112233445566778899aabbccddeeff00", "0x122233445566778899aabbccddeeff00"}}},
		},
		{
			name: "128-bit equal",
			a:    regs("xmm0", xmmA),
			b:    regs("xmm0", append([]byte(nil), xmmA...)),
		},
		{
			name: "layout shift equal symbolically",
			a:    regs("rdi", be(0x1010, 8)),
			b:    regs("rdi", be(0x1110, 8)),
			opt:  RegOptions{Symbolize: sym},
		},
		{
			name: "symbolic offsets differ",
			a:    regs("rdi", be(0x1010, 8)),
			b:    regs("rdi", be(0x1120, 8)),
			opt:  RegOptions{Symbolize: sym},
			want: []RegisterDiff{{Name: "rdi", Values: [2]string{"0x0000000000001010", "0x0000000000001120"}, Symbolic: [2]string{"buf+0x10", "buf+0x20"}}},
		},
		{
			name: "one side symbolises only",
			a:    regs("rdi", be(0x1010, 8)),
			b:    regs("rdi", be(0x9000, 8)),
			opt:  RegOptions{Symbolize: sym},
			want: []RegisterDiff{{Name: "rdi", Values: [2]string{"0x0000000000001010", "0x0000000000009000"}, Symbolic: [2]string{"buf+0x10", ""}}},
		},
		{
			name: "same-binary: no symbolisation",
			a:    regs("rdi", be(0x1010, 8)),
			b:    regs("rdi", be(0x1110, 8)),
			want: []RegisterDiff{{Name: "rdi", Values: [2]string{"0x0000000000001010", "0x0000000000001110"}}},
		},
		{
			name: "missing on one side",
			a:    regs("rax", be(1, 8), "fs_base", be(0, 8)),
			b:    regs("rax", be(1, 8), "k_gs_base", be(0, 8)),
			want: []RegisterDiff{
				{Name: "fs_base", Values: [2]string{"0x0000000000000000", "unavailable"}},
				{Name: "k_gs_base", Values: [2]string{"unavailable", "0x0000000000000000"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Registers(tc.a, tc.b, tc.opt)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Registers() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestIgnoreValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule string
		ok   bool
	}{
		{"eflags", true},
		{"rax", true},
		{"eflags.RF", true},
		{"EFLAGS.rf", true},
		{"eflags.IOPL", true},
		{"eflags.XX", false},
		{"rax.CF", false},
		{"", false},
		{".RF", false},
		{"e-flags", false},
	}
	for _, tc := range tests {
		err := IgnoreValid(tc.rule, testFlags)
		if (err == nil) != tc.ok {
			t.Errorf("IgnoreValid(%q) = %v, want ok=%v", tc.rule, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadIgnore) {
			t.Errorf("IgnoreValid(%q) error %v does not match ErrBadIgnore", tc.rule, err)
		}
	}
}

func TestIsNoise(t *testing.T) {
	t.Parallel()
	opt := RegOptions{Flags: testFlags, Noise: []string{"eflags.PF", "eflags.AF", "cr2"}}
	tests := []struct {
		name string
		a, b Regs
		want bool
	}{
		{"whole register", regs("cr2", be(1, 8)), regs("cr2", be(2, 8)), true},
		{"noise bits only", regs("eflags", be(0x4, 4)), regs("eflags", be(0x10, 4)), true},
		{"noise and real bit", regs("eflags", be(0x44, 4)), regs("eflags", be(0x0, 4)), false},
		{"other register", regs("rax", be(1, 8)), regs("rax", be(2, 8)), false},
	}
	for _, tc := range tests {
		d := Registers(tc.a, tc.b, opt)
		if len(d) != 1 {
			t.Fatalf("%s: Registers() = %+v, want one diff (noise is flagged, not dropped)", tc.name, d)
		}
		if got := opt.IsNoise(d[0]); got != tc.want {
			t.Errorf("%s: IsNoise(%+v) = %v, want %v", tc.name, d[0], got, tc.want)
		}
	}
	if (RegOptions{}).IsNoise(RegisterDiff{Name: "rax"}) {
		t.Error("IsNoise without rules = true")
	}
}
