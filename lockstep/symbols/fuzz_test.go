package symbols

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzTable is a small in-memory table for FuzzResolve.
func fuzzTable() *Table {
	t := &Table{path: "fuzz", byName: map[string]int32{}}
	for i, n := range []string{"kmain", "checksum", "checksum_init", "results", "foo.cold", "__func__.1"} {
		t.syms = append(t.syms, Symbol{Name: n, Addr: 0x100000 + uint64(i)*0x40, Size: 0x40, Func: i < 3})
		t.meta = append(t.meta, meta{})
		t.byName[n] = int32(i)
	}
	return t
}

// FuzzResolve checks that the address-expression parser never panics,
// that what it accepts round-trips, and that Resolve's errors keep their
// identity. Seeds are read from testdata/resolve-seeds.txt, one a line.
func FuzzResolve(f *testing.F) {
	seeds, err := os.ReadFile(filepath.Join("testdata", "resolve-seeds.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(strings.TrimRight(string(seeds), "\n"), "\n") {
		f.Add(s)
	}
	tab := fuzzTable()
	f.Fuzz(func(t *testing.T, expr string) {
		e, err := ParseExpr(expr)
		if err != nil {
			if !errors.Is(err, ErrBadExpr) {
				t.Fatalf("ParseExpr(%q) error %v is not ErrBadExpr", expr, err)
			}
		} else if e.Symbol != "" {
			again, err := ParseExpr(fmt.Sprintf("%s%+d", e.Symbol, e.Offset))
			if err != nil || again != e {
				t.Fatalf("ParseExpr(%q) = %+v, round trip %+v, %v", expr, e, again, err)
			}
		}
		addr, err := tab.Resolve(expr)
		switch {
		case err == nil:
			if e.Symbol == "" && addr != e.Addr {
				t.Fatalf("Resolve(%q) = %#x, want %#x", expr, addr, e.Addr)
			}
		case errors.Is(err, ErrUnknownSymbol):
			var ue *UnknownSymbolError
			if !errors.As(err, &ue) || len(ue.Suggestions) > 3 {
				t.Fatalf("Resolve(%q) error %v", expr, err)
			}
		case !errors.Is(err, ErrBadExpr):
			t.Fatalf("Resolve(%q) error %v has no known identity", expr, err)
		}
	})
}

// FuzzSourceIndex feeds arbitrary DWARF sections to the source index:
// indexing every unit and looking addresses up must not panic or hang,
// whatever the bytes. The seeds in testdata/fuzz/FuzzSourceIndex are the
// sections of testdata/inline.c (DWARF 5 at -O2, DWARF 4 at -O1) and of
// the demo guest. Units are built without the recovery Source puts around
// them, so a bug of the index's own is a crash here.
func FuzzSourceIndex(f *testing.F) {
	f.Fuzz(func(t *testing.T, abbrev, info, line, str, lineStr, rnglists, ranges []byte) {
		d, err := dwarf.New(abbrev, nil, nil, info, line, nil, ranges, str)
		if err != nil {
			return
		}
		for name, b := range map[string][]byte{".debug_line_str": lineStr, ".debug_rnglists": rnglists} {
			if err := d.AddSection(name, b); err != nil {
				return
			}
		}
		all := func(uint64) bool { return true }
		x, err := newSourceIndex(d, all, nil)
		if err != nil {
			return
		}
		for i := range x.units {
			ud, _ := buildUnit(d, &x.units[i], all)
			if ud == nil {
				t.Fatalf("unit %d: nil data", i)
			}
			x.units[i].data.Store(ud)
		}
		for _, r := range x.ranges {
			for _, a := range []uint64{r.lo, r.lo + (r.hi-r.lo)/2, r.hi - 1} {
				if _, line, in, ok := x.lookup(a); ok && (line <= 0 || len(in) > len(x.units[r.unit].data.Load().calls)) {
					t.Fatalf("lookup(%#x) = line %d, %d inlined", a, line, len(in))
				}
			}
		}
	})
}
