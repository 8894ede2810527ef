package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestLocSource checks that Loc fills the source line and inlined calls,
// with the side's source_strip applied to every file name, and that it
// keeps symbol+offset as the Location's String.
func TestLocSource(t *testing.T) {
	t.Parallel()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc not installed (Debian package gcc), needed to build the fixture: %v", err)
	}
	// Sources outside the compilation directory keep absolute names,
	// which only source_strip shortens.
	src, build := filepath.Join(t.TempDir(), "proj"), t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"lib/put.h": "static inline __attribute__((always_inline)) void put(volatile int *p, int v)\n{\n\t*p = v;\n}\n",
		"main.c":    "#include \"lib/put.h\"\nint x;\nvoid _start(void)\n{\n\tput(&x, 1);\n\tfor (;;)\n\t\t;\n}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	elf := filepath.Join(build, "loc.elf")
	cmd := exec.Command(gcc, "-O2", "-g", "-nostdlib", "-static", "-no-pie", "-fcf-protection=none", "-o", elf, filepath.Join(src, "main.c"))
	cmd.Dir = build
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	tab, err := symbols.Load(elf)
	if err != nil {
		t.Fatal(err)
	}
	start, _ := tab.Lookup("_start")
	tests := []struct {
		name  string
		strip []string
		file  string
		call  string
	}{
		{"no strip", nil, filepath.Join(src, "lib/put.h"), filepath.Join(src, "main.c")},
		{"stripped", []string{"/nowhere/", filepath.Dir(src) + "/*/"}, "lib/put.h", "main.c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := &Guest{Syms: tab, Spec: scenario.Guest{SourceStrip: tc.strip}}
			l := g.Loc(start.Addr)
			want := compare.Location{Addr: start.Addr, Symbol: "_start", File: tc.file, Line: 3,
				Inlined: []compare.InlinedFrame{{Function: "put", File: tc.call, Line: 5}}}
			if !reflect.DeepEqual(l, want) {
				t.Errorf("Loc(_start) = %+v\nwant %+v", l, want)
			}
			if l.String() != "_start" {
				t.Errorf("String() = %q", l.String())
			}
		})
	}
	// An address in no unit and a guest without symbols: no source.
	if l := (&Guest{Syms: tab}).Loc(0x10); l.File != "" || l.Line != 0 {
		t.Errorf("Loc(0x10) = %+v", l)
	}
	if l := (&Guest{}).Loc(0x10); !reflect.DeepEqual(l, compare.Location{Addr: 0x10}) {
		t.Errorf("Loc without symbols = %+v", l)
	}
}

// TestLocDemoGuest checks the demo guest: every function's entry has a
// line in demo.c, lib.c or boot.S, named relative to the guests' directory.
func TestLocDemoGuest(t *testing.T) {
	t.Parallel()
	tab, err := symbols.Load(qemutest.Guest(t, "demo-good"))
	if err != nil {
		t.Fatal(err)
	}
	g := &Guest{Syms: tab}
	for _, f := range tab.Functions() {
		l := g.Loc(f.Addr)
		switch l.File {
		case "demo.c", "lib.c", "boot.S":
		default:
			t.Errorf("Loc(%s) = %s (%s), want a line in demo.c, lib.c or boot.S", f.Name, l, l.Source())
		}
	}
}
