package compare

import (
	"slices"
	"strings"
	"testing"
)

func frames(names ...string) []Frame {
	f := make([]Frame, len(names))
	for i, n := range names {
		f[i] = Frame{Location: Location{Addr: uint64(0x1000 + i*0x10), Symbol: n, Offset: uint64(i)}}
	}
	return f
}

func TestCallPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		a, b    []Frame
		unified string // "" means equal (nil)
		summary string
	}{
		{"equal", frames("checksum", "kmain", "_start"), frames("checksum", "kmain", "_start"), "", ""},
		{"offsets ignored", frames("a", "b"), []Frame{{Location: Location{Addr: 9, Symbol: "a", Offset: 0x40}}, {Location: Location{Addr: 1, Symbol: "b"}}}, "", ""},
		{"source lines and inlined frames ignored", frames("leaf", "kmain"), []Frame{
			{Location: Location{Addr: 0x2000, Symbol: "leaf", File: "demo.c", Line: 61, Inlined: []InlinedFrame{{Function: "helper", File: "demo.c", Line: 60}}}},
			{Location: Location{Addr: 0x2010, Symbol: "kmain", Offset: 1, File: "demo.c", Line: 176}}}, "", ""},
		{"replaced", frames("path_b", "kmain", "_start"), frames("path_c", "kmain", "_start"),
			"-path_b\n+path_c\n kmain\n _start\n", "call path: path_b → path_c"},
		{"extra frame in b", frames("kmain", "_start"), frames("helper", "kmain", "_start"),
			"+helper\n kmain\n _start\n", "call path: helper only in b"},
		{"missing frame in b", frames("fib", "fib", "kmain"), frames("fib", "kmain"),
			"-fib\n fib\n kmain\n", "call path: fib only in a"},
		{"unsymbolised frames by address", []Frame{{Location: Location{Addr: 0x10}}}, []Frame{{Location: Location{Addr: 0x20}}},
			"-0x10\n+0x20\n", "call path: 0x10 → 0x20"},
		{"empty vs one", nil, frames("kmain"), "+kmain\n", "call path: kmain only in b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := CallPath("backtrace", tc.a, tc.b)
			if tc.unified == "" {
				if d != nil {
					t.Fatalf("CallPath() = %+v, want nil", d)
				}
				return
			}
			if d == nil {
				t.Fatal("CallPath() = nil")
			}
			if d.Unified != tc.unified {
				t.Errorf("Unified =\n%s\nwant\n%s", d.Unified, tc.unified)
			}
			if got := CallPathSummary(d); got != tc.summary {
				t.Errorf("CallPathSummary() = %q, want %q", got, tc.summary)
			}
			if d.Source != "backtrace" || len(d.A) != len(tc.a) || len(d.B) != len(tc.b) {
				t.Errorf("Source/A/B = %q %d %d", d.Source, len(d.A), len(d.B))
			}
		})
	}
}

func TestCallPathOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		a, b         []Frame
		onlyA, onlyB []string
	}{
		{"replaced", frames("path_b", "kmain", "_start"), frames("path_c", "kmain", "_start"), []string{"path_b"}, []string{"path_c"}},
		{"extra frame in b", frames("kmain", "_start"), frames("helper", "kmain", "_start"), nil, []string{"helper"}},
		{"repeated frame in a", frames("fib", "fib", "kmain"), frames("fib", "kmain"), []string{"fib"}, nil},
		{"in order", frames("x", "y", "kmain", "z"), frames("kmain", "u", "v"), []string{"x", "y", "z"}, []string{"u", "v"}},
		{"both repeated", frames("tick", "main", "tick"), frames("tock", "main", "tock"), []string{"tick", "tick"}, []string{"tock", "tock"}},
		{"unsymbolised frames by address", []Frame{{Location: Location{Addr: 0x10}}}, []Frame{{Location: Location{Addr: 0x20}}}, []string{"0x10"}, []string{"0x20"}},
		{"empty vs one", nil, frames("kmain"), nil, []string{"kmain"}},
		{"newline in a name", frames("a\nb"), frames("c"), []string{"a b"}, []string{"c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := CallPath("trace", tc.a, tc.b)
			if d == nil {
				t.Fatal("CallPath() = nil")
			}
			if !slices.Equal(d.OnlyA, tc.onlyA) || !slices.Equal(d.OnlyB, tc.onlyB) {
				t.Errorf("OnlyA, OnlyB = %q, %q; want %q, %q", d.OnlyA, d.OnlyB, tc.onlyA, tc.onlyB)
			}
			// The same names as the "-" and "+" lines of Unified.
			var minus, plus []string
			for line := range strings.Lines(d.Unified) {
				switch line[0] {
				case '-':
					minus = append(minus, strings.TrimSuffix(line[1:], "\n"))
				case '+':
					plus = append(plus, strings.TrimSuffix(line[1:], "\n"))
				}
			}
			if !slices.Equal(d.OnlyA, minus) || !slices.Equal(d.OnlyB, plus) {
				t.Errorf("OnlyA, OnlyB = %q, %q; Unified has\n%s", d.OnlyA, d.OnlyB, d.Unified)
			}
		})
	}
}

// TestCallPathManyNames checks that go-diff's line encoding holds for more
// distinct lines than fit in one byte.
func TestCallPathManyNames(t *testing.T) {
	t.Parallel()
	var a, b []string
	for i := range 400 {
		n := "f" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		a = append(a, n)
		if i != 300 {
			b = append(b, n)
		}
	}
	d := CallPath("trace", frames(a...), frames(b...))
	if d == nil {
		t.Fatal("CallPath() = nil")
	}
	if got, want := CallPathSummary(d), "traced calls: "+a[300]+" only in a"; got != want {
		t.Errorf("CallPathSummary() = %q, want %q", got, want)
	}
}

func TestRegisterSummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    RegisterDiff
		want string
	}{
		{RegisterDiff{Name: "rsi", Values: [2]string{"0x0000000000005a5a", "0x0000000000005a5b"}}, "rsi: 0x5a5a vs 0x5a5b"},
		{RegisterDiff{Name: "eflags", Values: [2]string{"0x00000246", "0x00000203"}, Bits: []string{"CF", "ZF"}}, "eflags: 0x246 vs 0x203 (CF ZF)"},
		{RegisterDiff{Name: "rdi", Values: [2]string{"0x1010", "0x1120"}, Symbolic: [2]string{"buf+0x10", "buf+0x20"}}, "rdi: 0x1010 (buf+0x10) vs 0x1120 (buf+0x20)"},
		{RegisterDiff{Name: "rax", Values: [2]string{"0x0000", "unavailable"}}, "rax: 0x0 vs unavailable"},
	}
	for _, tc := range tests {
		if got := RegisterSummary(tc.d); got != tc.want {
			t.Errorf("RegisterSummary(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
