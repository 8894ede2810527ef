package symbols

import (
	"errors"
	"testing"
)

// BenchmarkUnwindTables measures the unwind tables on each of dwarfELFs:
//   - orc-load, cfi-load: Load, then the first ORC or CFI call, which
//     reads and decodes the sections (done once, by the first backtrace);
//   - orc-lookup, cfi-lookup: one lookup at a pc inside a function, in
//     loaded tables, cycling over all functions (a CFI lookup runs the
//     FDE's program up to the pc).
func BenchmarkUnwindTables(b *testing.B) {
	for _, e := range dwarfELFs(b) {
		b.Run(e.name, func(b *testing.B) {
			if e.skip != "" {
				b.Skip(e.skip)
			}
			tab, err := Load(e.path)
			if err != nil {
				b.Fatal(err)
			}
			fns := tab.Functions()
			if len(fns) == 0 {
				b.Skip("no functions")
			}
			for _, kind := range []string{"orc", "cfi"} {
				load := func(t *Table) (int, error) {
					if kind == "orc" {
						o, err := t.ORC()
						return o.Len(), err
					}
					c, err := t.CFI()
					return c.Len(), err
				}
				if _, err := load(tab); errors.Is(err, ErrNoORC) || errors.Is(err, ErrNoCFI) {
					continue
				} else if err != nil {
					b.Fatal(err)
				}
				b.Run(kind+"-load", func(b *testing.B) {
					var n int
					for b.Loop() {
						t, err := Load(e.path)
						if err != nil {
							b.Fatal(err)
						}
						if n, err = load(t); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n), "entries")
				})
				b.Run(kind+"-lookup", func(b *testing.B) {
					o, _ := tab.ORC()
					c, _ := tab.CFI()
					i := 0
					for b.Loop() {
						f := fns[i%len(fns)]
						pc := f.Addr + f.Size/2
						if kind == "orc" {
							o.Lookup(pc)
						} else {
							c.Lookup(pc)
						}
						i += 7919
					}
				})
			}
		})
	}
}
