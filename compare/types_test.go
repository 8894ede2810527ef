package compare

import (
	"encoding/json"
	"testing"
)

func TestLocationForms(t *testing.T) {
	t.Parallel()
	inl := []InlinedFrame{{Function: "helper", File: "lib.h", Line: 12}}
	tests := []struct {
		name        string
		l           Location
		str, source string
		zero        bool
		json        string
	}{
		{"zero", Location{}, "0x0", "", true, `{"addr":0}`},
		{"address only", Location{Addr: 0x10}, "0x10", "", false, `{"addr":16}`},
		{"symbol", Location{Addr: 0x100, Symbol: "kmain"}, "kmain", "", false, `{"addr":256,"symbol":"kmain"}`},
		{"symbol and line", Location{Addr: 0x1a2, Symbol: "kmain", Offset: 0xa2, File: "demo.c", Line: 175},
			"kmain+0xa2", "demo.c:175", false, `{"addr":418,"symbol":"kmain","offset":162,"file":"demo.c","line":175}`},
		{"file without line", Location{Addr: 1, File: "boot.S"}, "0x1", "boot.S", false, `{"addr":1,"file":"boot.S"}`},
		{"inlined", Location{Addr: 2, Symbol: "kmain", Offset: 2, File: "lib.h", Line: 12, Inlined: inl},
			"kmain+0x2", "lib.h:12", false,
			`{"addr":2,"symbol":"kmain","offset":2,"file":"lib.h","line":12,"inlined":[{"function":"helper","file":"lib.h","line":12}]}`},
		{"source only is not zero", Location{Line: 3}, "0x0", "", false, `{"addr":0,"line":3}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.l.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := tc.l.Source(); got != tc.source {
				t.Errorf("Source() = %q, want %q", got, tc.source)
			}
			if got := tc.l.IsZero(); got != tc.zero {
				t.Errorf("IsZero() = %v, want %v", got, tc.zero)
			}
			b, err := json.Marshal(tc.l)
			if err != nil || string(b) != tc.json {
				t.Errorf("json = %s, %v; want %s", b, err, tc.json)
			}
			bare := Location{Addr: tc.l.Addr, Symbol: tc.l.Symbol, Offset: tc.l.Offset}
			if !tc.l.SameCode(bare) {
				t.Error("SameCode compares the source position")
			}
			if tc.l.SameCode(Location{Addr: tc.l.Addr + 1, Symbol: tc.l.Symbol, Offset: tc.l.Offset}) {
				t.Error("SameCode ignores the address")
			}
		})
	}
	if got := (InlinedFrame{Function: "f", File: "a.c", Line: 3}).Source(); got != "a.c:3" {
		t.Errorf("InlinedFrame.Source() = %q", got)
	}
}
