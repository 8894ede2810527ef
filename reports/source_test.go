package reports

import (
	"reflect"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
)

func TestLocText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		l    compare.Location
		want string
	}{
		{"no source", compare.Location{Addr: 0x1a2, Symbol: "kmain", Offset: 0xa2}, "kmain+0xa2"},
		{"address only", compare.Location{Addr: 0x10}, "0x10"},
		{"line", compare.Location{Addr: 0x1a2, Symbol: "kmain", Offset: 0xa2, File: "demo.c", Line: 175}, "kmain+0xa2 (demo.c:175)"},
		{"file only", compare.Location{Addr: 0x100, Symbol: "pvh_start", File: "boot.S"}, "pvh_start (boot.S)"},
		{"inlined", compare.Location{Addr: 0x166, Symbol: "qemu_exit", Offset: 6, File: "lib.h", Line: 35,
			Inlined: []compare.InlinedFrame{{Function: "outl", File: "lib.c", Line: 49}}}, "qemu_exit+0x6 (lib.h:35 in inlined outl)"},
	}
	for _, tc := range tests {
		if got := locText(tc.l); got != tc.want {
			t.Errorf("%s: locText = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSourceFrames(t *testing.T) {
	t.Parallel()
	// scale inlined in middle inlined in outer, as in lockstep/symbols'
	// inline.c: gdb lists outer at 19, middle at 11, scale at inline.h:4.
	l := compare.Location{Addr: 0x401018, Symbol: "outer", Offset: 0x18, File: "inline.h", Line: 4,
		Inlined: []compare.InlinedFrame{{Function: "scale", File: "inline.c", Line: 11}, {Function: "middle", File: "inline.c", Line: 19}}}
	want := []srcFrame{{"outer+0x18", "inline.c:19", false}, {"middle", "inline.c:11", true}, {"scale", "inline.h:4", true}}
	if got := sourceFrames(l, l.String()); !reflect.DeepEqual(got, want) {
		t.Errorf("sourceFrames = %+v, want %+v", got, want)
	}
	f := compare.Frame{Location: l, Uncertain: true, How: "scan"}
	wantLines := []string{"outer+0x18 (inline.c:19) [0x401018] ? via scan", "  middle [inlined] (inline.c:11)", "  scale [inlined] (inline.h:4)"}
	if got := frameLines(f, "  "); !reflect.DeepEqual(got, wantLines) {
		t.Errorf("frameLines = %q, want %q", got, wantLines)
	}
	if got := pathString([]compare.Frame{{Location: compare.Location{Symbol: "kmain", File: "demo.c", Line: 160}}, f}); got !=
		"kmain (demo.c:160) > outer+0x18? (inline.c:19) > middle [inlined] (inline.c:11) > scale [inlined] (inline.h:4)" {
		t.Errorf("pathString = %q", got)
	}
}

func TestPathLines(t *testing.T) {
	t.Parallel()
	fr := func(sym, file string, line int, inl ...compare.InlinedFrame) compare.Frame {
		return compare.Frame{Location: compare.Location{Addr: 1, Symbol: sym, File: file, Line: line, Inlined: inl}}
	}
	helper := compare.InlinedFrame{Function: "helper", File: "demo.c", Line: 40}
	other := compare.InlinedFrame{Function: "other", File: "demo.c", Line: 41}
	texts := func(ls []pathLine) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.text())
		}
		return out
	}
	tests := []struct {
		name string
		c    compare.CallPathDiff
		want []string
	}{
		{"replaced frame, line moved on a common one",
			compare.CallPathDiff{A: []compare.Frame{fr("kmain", "demo.c", 160), fr("path_b", "demo.c", 92)},
				B: []compare.Frame{fr("kmain", "demo.c", 162), fr("path_c", "demo.c", 100)}, Unified: " kmain\n-path_b\n+path_c\n"},
			[]string{" kmain (a demo.c:160, b demo.c:162)", "-path_b (demo.c:92)", "+path_c (demo.c:100)"}},
		{"same inlined call on both sides",
			compare.CallPathDiff{A: []compare.Frame{fr("kmain", "lib.h", 3, helper), fr("a", "", 0)},
				B: []compare.Frame{fr("kmain", "lib.h", 3, helper), fr("b", "", 0)}, Unified: " kmain\n-a\n+b\n"},
			[]string{" kmain (demo.c:40)", " helper [inlined] (lib.h:3)", "-a", "+b"}},
		{"different inlined calls on a common frame",
			compare.CallPathDiff{A: []compare.Frame{fr("kmain", "lib.h", 3, helper)}, B: []compare.Frame{fr("kmain", "lib.h", 4, other), fr("x", "", 0)},
				Unified: " kmain\n+x\n"},
			[]string{" kmain (a demo.c:40, b demo.c:41)", "-helper [inlined] (lib.h:3)", "+other [inlined] (lib.h:4)", "+x"}},
		{"unified does not match the frames: as is",
			compare.CallPathDiff{A: []compare.Frame{fr("kmain", "demo.c", 1)}, B: nil, Unified: " kmain\n-gone\n"},
			[]string{" kmain", "-gone"}},
		{"a side without a line", compare.CallPathDiff{A: []compare.Frame{fr("kmain", "", 0)}, B: []compare.Frame{fr("kmain", "demo.c", 5)}, Unified: " kmain\n"},
			[]string{" kmain (demo.c:5)"}},
		{"empty", compare.CallPathDiff{}, nil},
	}
	for _, tc := range tests {
		got := texts(pathLines(&tc.c))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: pathLines =\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}
