package symbols

import (
	"debug/elf"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/arch"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// countingReader records which byte ranges of a file were read.
type countingReader struct {
	f     *os.File
	mu    sync.Mutex
	reads [][2]int64
	total int64
}

func (r *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	r.mu.Lock()
	r.reads = append(r.reads, [2]int64{off, off + int64(n)})
	r.total += int64(n)
	r.mu.Unlock()
	return n, err
}

// TestLoadReadsNoDWARF checks that loading touches neither DWARF nor code:
// only headers, .symtab and string tables.
func TestLoadReadsNoDWARF(t *testing.T) {
	t.Parallel()
	for _, path := range []string{fixtureWithDWARF(t), qemutest.Guest(t, "demo-good")} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cr := &countingReader{f: f}
		if _, err := load(cr, path); err != nil {
			t.Fatal(err)
		}
		ef, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ef.Close()
		var dwarf int
		for _, s := range ef.Sections {
			forbidden := strings.HasPrefix(s.Name, ".debug") || s.Name == ".text" || s.Name == ".data"
			if !forbidden || s.Type == elf.SHT_NOBITS || s.Size == 0 {
				continue
			}
			if strings.HasPrefix(s.Name, ".debug") {
				dwarf++
			}
			lo, hi := int64(s.Offset), int64(s.Offset+s.FileSize)
			for _, r := range cr.reads {
				if r[0] < hi && r[1] > lo {
					t.Errorf("%s: Load read [%#x,%#x) inside %s", path, r[0], r[1], s.Name)
				}
			}
		}
		if dwarf == 0 {
			t.Errorf("%s has no DWARF sections; the test proves nothing", path)
		}
		st, _ := f.Stat()
		t.Logf("%s: read %d of %d bytes in %d reads", path, cr.total, st.Size(), len(cr.reads))
	}
}

// fixtureWithDWARF builds the gcc fixture with -g.
func fixtureWithDWARF(t *testing.T) string {
	t.Helper()
	fixture(t, false) // skips without gcc
	out := t.TempDir() + "/fixture-g.elf"
	buildC(t, out, "-g")
	return out
}

func TestDemoGuest(t *testing.T) {
	t.Parallel()
	path := qemutest.Guest(t, "demo-good")
	tab, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Machine() != elf.EM_X86_64 {
		t.Errorf("Machine() = %v", tab.Machine())
	}
	for _, name := range []string{"kmain", "checksum", "results", "pvh_start", "report"} {
		if _, ok := tab.Lookup(name); !ok {
			t.Errorf("demo-good has no %s", name)
		}
	}
	ck, _ := tab.Lookup("checksum")
	a, err := tab.Resolve("checksum+0x4")
	if err != nil || a != ck.Addr+4 {
		t.Errorf("Resolve(checksum+0x4) = %#x, %v", a, err)
	}
	if loc, ok := tab.Symbolize(ck.Addr + 4); !ok || loc.String() != "checksum+0x4" {
		t.Errorf("Symbolize = %v, %v", loc, ok)
	}
	if sz, ok := tab.SymbolSize("results"); !ok || sz == 0 {
		t.Errorf("SymbolSize(results) = %d, %v", sz, ok)
	}
	if got := tab.Match("path_*"); len(got) < 2 {
		t.Errorf("Match(path_*) = %v", got)
	}
	// The entry point is 32-bit PVH code; kmain is 64-bit. Both must
	// disassemble from the file's bytes, symbolised.
	x64, _ := arch.Lookup("x86_64")
	i386, _ := arch.Lookup("i386")
	sym := func(addr uint64) string {
		if l, ok := tab.Symbolize(addr); ok {
			return l.String()
		}
		return ""
	}
	for _, tc := range []struct {
		a    *arch.Arch
		addr uint64
	}{{i386, tab.Entry()}, {x64, func() uint64 { s, _ := tab.Lookup("kmain"); return s.Addr }()}} {
		code, err := tab.ReadAt(tc.addr, 64)
		if err != nil {
			t.Fatal(err)
		}
		pc := tc.addr
		for off := 0; off < 32; {
			text, n, err := tc.a.Disasm(code[off:], pc, sym)
			if err != nil {
				t.Fatalf("disasm at %#x: %v", pc, err)
			}
			t.Logf("%-20s %s", sym(pc), text)
			off += n
			pc += uint64(n)
		}
	}
}
