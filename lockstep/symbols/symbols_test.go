package symbols

import (
	"bytes"
	"cmp"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
)

func loadFixture(t *testing.T) *Table {
	t.Helper()
	tab, err := Load(fixture(t, false))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func addr(t *testing.T, tab *Table, name string) uint64 {
	t.Helper()
	s, ok := tab.Lookup(name)
	if !ok {
		t.Fatalf("fixture has no %s", name)
	}
	return s.Addr
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		is   error
		text string
	}{
		{"stripped", fixture(t, true), ErrNoSymbols, "build with symbols or set symbols:"},
		{"not ELF", "testdata/not-elf.txt", nil, "testdata/not-elf.txt is not an ELF file"},
		{"missing", "testdata/missing.elf", fs.ErrNotExist, "missing.elf"},
	}
	for _, tc := range tests {
		_, err := Load(tc.path)
		if err == nil {
			t.Errorf("%s: Load succeeded", tc.name)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: Load error %v is not %v", tc.name, err, tc.is)
		}
		var fe *elf.FormatError
		if tc.name == "not ELF" && !errors.As(err, &fe) {
			t.Errorf("%s: Load error %v is not an *elf.FormatError", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: Load error %q does not say %q", tc.name, err, tc.text)
		}
	}
}

func TestTableBasics(t *testing.T) {
	t.Parallel()
	tab := loadFixture(t)
	if tab.Machine() != elf.EM_X86_64 || tab.Entry() != addr(t, tab, "_start") || tab.PtrSize() != 8 {
		t.Errorf("Machine %v Entry %#x PtrSize %d", tab.Machine(), tab.Entry(), tab.PtrSize())
	}
	tests := []struct {
		name       string
		size       uint64
		fn, text   bool
		wantExists bool
	}{
		{"table", 64, false, false, true},
		{"counter", 4, false, false, true},
		{"asm_label", 0, false, true, true},
		{"alpha", 0, true, true, true},        // size checked below as > 0
		{"fixture.c", 0, false, false, false}, // FILE symbols are skipped
		{"nope", 0, false, false, false},
	}
	for _, tc := range tests {
		s, ok := tab.Lookup(tc.name)
		if ok != tc.wantExists {
			t.Errorf("Lookup(%q) ok = %v", tc.name, ok)
			continue
		}
		if !ok {
			continue
		}
		if s.Func != tc.fn || s.Text != tc.text || (tc.size != 0 && s.Size != tc.size) {
			t.Errorf("Lookup(%q) = %+v", tc.name, s)
		}
		if sz, ok := tab.SymbolSize(tc.name); !ok || sz != s.Size {
			t.Errorf("SymbolSize(%q) = %d, %v", tc.name, sz, ok)
		}
	}
	if s, _ := tab.Lookup("alpha"); s.Size == 0 {
		t.Error("alpha has size 0")
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tab := loadFixture(t)
	alpha := addr(t, tab, "alpha")
	tests := []struct {
		expr string
		want uint64
		is   error
	}{
		{"alpha", alpha, nil},
		{"alpha+0x10", alpha + 0x10, nil},
		{"alpha+16", alpha + 16, nil},
		{" alpha + 4 ", alpha + 4, nil},
		{"alpha-4", alpha - 4, nil},
		{"0xffffffff81000000", 0xffffffff81000000, nil},
		{"1048576", 1048576, nil},
		{"alpah", 0, ErrUnknownSymbol},
		{"alpha+", 0, ErrBadExpr},
		{"alpha+zz", 0, ErrBadExpr},
		{"0xZZ", 0, ErrBadExpr},
		{"", 0, ErrBadExpr},
		{"a b", 0, ErrBadExpr},
	}
	for _, tc := range tests {
		got, err := tab.Resolve(tc.expr)
		if tc.is != nil {
			if !errors.Is(err, tc.is) {
				t.Errorf("Resolve(%q) = %#x, %v; want %v", tc.expr, got, err, tc.is)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %#x, %v; want %#x", tc.expr, got, err, tc.want)
		}
	}
}

func TestResolveSuggestions(t *testing.T) {
	t.Parallel()
	tab := loadFixture(t)
	tests := []struct {
		name string
		want []string // must be among the suggestions, first one first
	}{
		{"alpah", []string{"alpha"}},
		{"chksum", []string{"checksum"}},
		{"ALPHA", []string{"alpha"}},
		{"alph", []string{"alpha", "alpha_beta"}},
		{"zzzzzzzzzzzz", nil},
	}
	for _, tc := range tests {
		_, err := tab.Resolve(tc.name)
		var ue *UnknownSymbolError
		if !errors.As(err, &ue) {
			t.Fatalf("Resolve(%q) error %v is not an *UnknownSymbolError", tc.name, err)
		}
		if ue.Name != tc.name || len(ue.Suggestions) > 3 {
			t.Errorf("Resolve(%q): %+v", tc.name, ue)
		}
		if len(tc.want) == 0 && len(ue.Suggestions) != 0 {
			t.Errorf("Resolve(%q) suggests %v, want none", tc.name, ue.Suggestions)
		}
		for i, w := range tc.want {
			if i >= len(ue.Suggestions) || ue.Suggestions[i] != w {
				t.Errorf("Resolve(%q) suggests %v, want %v first", tc.name, ue.Suggestions, tc.want)
				break
			}
		}
		if len(tc.want) > 0 && !strings.Contains(err.Error(), "did you mean "+tc.want[0]) {
			t.Errorf("Resolve(%q) error %q does not suggest %s", tc.name, err, tc.want[0])
		}
	}
}

func TestSymbolize(t *testing.T) {
	t.Parallel()
	tab := loadFixture(t)
	alpha, _ := tab.Lookup("alpha")
	label := addr(t, tab, "asm_label")
	table := addr(t, tab, "table")
	counter := addr(t, tab, "counter")
	tests := []struct {
		name string
		addr uint64
		want compare.Location
		ok   bool
	}{
		{"function start", alpha.Addr, compare.Location{Addr: alpha.Addr, Symbol: "alpha"}, true},
		{"inside function", alpha.Addr + 3, compare.Location{Addr: alpha.Addr + 3, Symbol: "alpha", Offset: 3}, true},
		{"object", table + 0x28, compare.Location{Addr: table + 0x28, Symbol: "table", Offset: 0x28}, true},
		{"bss object over NOTYPE __bss_start", counter, compare.Location{Addr: counter, Symbol: "counter"}, true},
		{"size-0 asm label", label + 2, compare.Location{Addr: label + 2, Symbol: "asm_label", Offset: 2}, true},
		{"nowhere", 0x10, compare.Location{Addr: 0x10}, false},
		{"past counter", counter + 4, compare.Location{Addr: counter + 4}, false},
	}
	// A size-0 linker mark symbolises exactly at its address.
	if end, ok := tab.Lookup("_end"); ok {
		tests = append(tests, struct {
			name string
			addr uint64
			want compare.Location
			ok   bool
		}{"linker mark _end", end.Addr, compare.Location{Addr: end.Addr, Symbol: "_end"}, true})
	}
	// Padding after a sized function (aligned to 16) is not attributed to
	// the asm label before it.
	if end := alpha.Addr + alpha.Size; end%16 != 0 {
		tests = append(tests, struct {
			name string
			addr uint64
			want compare.Location
			ok   bool
		}{"padding after alpha", end, compare.Location{Addr: end}, false})
	}
	for _, tc := range tests {
		got, ok := tab.Symbolize(tc.addr)
		if !reflect.DeepEqual(got, tc.want) || ok != tc.ok {
			t.Errorf("%s: Symbolize(%#x) = %+v, %v; want %+v, %v", tc.name, tc.addr, got, ok, tc.want, tc.ok)
		}
	}
	if !tab.IsText(alpha.Addr) || !tab.IsText(label) || tab.IsText(table) || tab.IsText(0x10) {
		t.Error("IsText wrong")
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tab := loadFixture(t)
	names := func(ss []Symbol) []string {
		var n []string
		for _, s := range ss {
			n = append(n, s.Name)
		}
		slices.Sort(n)
		return n
	}
	tests := []struct {
		glob string
		want []string
	}{
		{"alpha", []string{"alpha"}},
		{"alpha*", []string{"alpha", "alpha_beta"}},
		{"*helper", []string{"helper", "helper", "other_helper"}},
		{"helper", []string{"helper", "helper"}},
		{"table", nil},     // an object, not a function
		{"asm_label", nil}, // NOTYPE
		{"[", nil},
		{"nope*", nil},
	}
	for _, tc := range tests {
		if got := names(tab.Match(tc.glob)); !slices.Equal(got, tc.want) {
			t.Errorf("Match(%q) = %v, want %v", tc.glob, got, tc.want)
		}
	}
	if ValidPattern("[") == nil || ValidPattern("check*") != nil {
		t.Error("ValidPattern wrong")
	}
	fns := tab.Functions()
	if len(fns) < 6 || !slices.IsSortedFunc(fns, func(a, b Symbol) int { return cmp.Compare(a.Addr, b.Addr) }) {
		t.Errorf("Functions() = %v", fns)
	}
	for _, f := range fns {
		if !f.Func || !f.Text {
			t.Errorf("Functions() holds %+v", f)
		}
	}
}

func TestReadAt(t *testing.T) {
	t.Parallel()
	path := fixture(t, false)
	tab := loadFixture(t)
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := f.Section(".text")
	want, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	data, err := f.Section(".data").Data()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		addr uint64
		n    int
		want []byte
		is   error
	}{
		{"text start", text.Addr, 16, want[:16], nil},
		{"function", addr(t, tab, "alpha"), 4, want[addr(t, tab, "alpha")-text.Addr:][:4], nil},
		{"whole text", text.Addr, len(want), want, nil},
		{"data", addr(t, tab, "table"), 12, data[:12], nil},
		{"zero bytes", text.Addr, 0, []byte{}, nil},
		{"past text end", text.Addr + uint64(len(want)) - 2, 8, nil, ErrNotInFile},
		{"bss is not in the file", addr(t, tab, "counter"), 4, nil, ErrNotInFile},
		{"unmapped", 0x10, 4, nil, ErrNotInFile},
	}
	for _, tc := range tests {
		got, err := tab.ReadAt(tc.addr, tc.n)
		if tc.is != nil {
			if !errors.Is(err, tc.is) {
				t.Errorf("%s: ReadAt(%#x, %d) = %x, %v; want %v", tc.name, tc.addr, tc.n, got, err, tc.is)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: ReadAt(%#x, %d) = %x, %v; want %x", tc.name, tc.addr, tc.n, got, err, tc.want)
		}
	}
}

// TestMappingSymbols checks that ARM/RISC-V mapping symbols and
// assembler-local labels never name an address: testdata/mapsyms.S puts
// them inside code that has only a size-0 label, and after a data object.
func TestMappingSymbols(t *testing.T) {
	t.Parallel()
	fixture(t, false) // skips without gcc
	out := t.TempDir() + "/mapsyms.elf"
	cmd := exec.Command("gcc", "-nostdlib", "-static", "-no-pie", "-Wa,-L", "-o", out, "testdata/mapsyms.S")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	tab, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	entry := addr(t, tab, "entry_asm")
	table := addr(t, tab, "table")
	tests := []struct {
		name string
		addr uint64
		want string
	}{
		{"$x at the label", entry, "entry_asm"},
		{"after .Lloop", entry + 3, "entry_asm+0x3"},
		{"at $d", entry + 4, "entry_asm+0x4"},
		{"in the literal", entry + 6, "entry_asm+0x6"},
		{"at $a.1", entry + 8, "entry_asm+0x8"},
		{"at $t", entry + 9, "entry_asm+0x9"},
		{"at $xrv64i2p1_m2p0", entry + 10, "entry_asm+0xa"},
		{"$d.2 after a data object", table + 4, fmt.Sprintf("%#x", table+4)},
	}
	for _, tc := range tests {
		if got, _ := tab.Symbolize(tc.addr); got.String() != tc.want {
			t.Errorf("%s: Symbolize(%#x) = %s, want %s", tc.name, tc.addr, got, tc.want)
		}
	}
	for _, name := range []string{"$x", "$d", "$a.1", "$t", "$xrv64i2p1_m2p0", "$d.2", ".Lloop"} {
		if _, ok := tab.Lookup(name); ok {
			t.Errorf("Lookup(%q) found a marker symbol", name)
		}
	}
}

func TestNotAName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"$x", true}, {"$d", true}, {"$a", true}, {"$t", true},
		{"$x.12", true}, {"$d.literal", true},
		{"$xrv64i2p1_m2p0_a2p1", true},
		{".L", true}, {".Lloop", true}, {".LC0", true}, {".Ltmp12", true},
		{"$", false}, {"$b", false}, {"$dx", false}, {"$drv64", false}, {"$x_real", false},
		{"x", false}, {"kmain", false}, {".text", false}, {"L0", false}, {"_start", false},
	}
	for _, tc := range tests {
		if got := notAName(tc.name); got != tc.want {
			t.Errorf("notAName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFileOffset checks where initialised data comes from in the file,
// and that .bss has no file bytes.
func TestFileOffset(t *testing.T) {
	t.Parallel()
	path := fixture(t, false)
	tab := loadFixture(t)
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, ok := tab.Lookup("table")
	if !ok {
		t.Fatal("no symbol table")
	}
	data := f.Section(".data")
	sec, off, ok := tab.FileOffset(table.Addr + 4)
	if !ok || sec != ".data" || off != data.Offset+(table.Addr+4-data.Addr) {
		t.Errorf("FileOffset(table+4) = %q %#x %v, want .data at %#x", sec, off, ok, data.Offset+(table.Addr+4-data.Addr))
	}
	counter, ok := tab.Lookup("counter")
	if !ok {
		t.Fatal("no symbol counter")
	}
	if sec, off, ok := tab.FileOffset(counter.Addr); ok {
		t.Errorf("FileOffset(counter) = %q %#x, want none (.bss)", sec, off)
	}
}
