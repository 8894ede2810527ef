package lockstep

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
)

// TestNoteSource checks the note that says reports have no source lines:
// once, naming the file(s) without DWARF, and only after a line was asked
// for.
func TestNoteSource(t *testing.T) {
	t.Parallel()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc not installed (Debian package gcc), needed to build an ELF without DWARF: %v", err)
	}
	noDWARF := filepath.Join(t.TempDir(), "nodwarf.elf")
	cmd := exec.Command(gcc, "-O1", "-nostdlib", "-static", "-no-pie", "-x", "c", "-o", noDWARF, "-")
	cmd.Stdin = strings.NewReader("void _start(void) { for (;;) ; }\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	load := func(path string) *symbols.Table {
		tab, err := symbols.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}
	asked := func(tab *symbols.Table) *symbols.Table {
		s, _ := tab.Lookup("_start")
		if s.Name == "" {
			s, _ = tab.Lookup("kmain")
		}
		tab.Source(s.Addr)
		return tab
	}
	same := asked(load(noDWARF))
	withDWARF := asked(load(qemutest.Guest(t, "demo-good")))
	tests := []struct {
		name string
		syms [2]*symbols.Table
		want string // "" for no note
	}{
		{"one binary", [2]*symbols.Table{same, same}, "no source lines: nodwarf.elf (both guests) has no DWARF line tables (build with -g)"},
		{"side b only", [2]*symbols.Table{withDWARF, asked(load(noDWARF))}, "no source lines: nodwarf.elf (guest b) has no DWARF"},
		{"two builds", [2]*symbols.Table{asked(load(noDWARF)), asked(load(noDWARF))}, "nodwarf.elf (guest a) and nodwarf.elf (guest b) have no DWARF"},
		{"never asked", [2]*symbols.Table{load(noDWARF), nil}, ""},
		{"with DWARF", [2]*symbols.Table{withDWARF, withDWARF}, ""},
	}
	for _, tc := range tests {
		r := &run{syms: tc.syms, res: &Result{}}
		r.noteSource()
		switch {
		case tc.want == "" && len(r.res.Notes) != 0:
			t.Errorf("%s: notes %q, want none", tc.name, r.res.Notes)
		case tc.want != "" && (len(r.res.Notes) != 1 || !strings.Contains(r.res.Notes[0], tc.want)):
			t.Errorf("%s: notes %q, want one saying %q", tc.name, r.res.Notes, tc.want)
		}
	}
}
