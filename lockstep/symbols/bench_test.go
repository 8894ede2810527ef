package symbols

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// benchELF returns the ELF to benchmark Load on: $LOCKSTEP_BENCH_ELF, or
// the largest ELF with a symtab commonly present (a vmlinux if someone
// fetched one, else node), else the test binary itself.
func benchELF(b *testing.B) string {
	if p := os.Getenv("LOCKSTEP_BENCH_ELF"); p != "" {
		return p
	}
	for _, p := range []string{"/work/linux/vmlinux", "/usr/bin/node"} {
		if _, err := Load(p); err == nil {
			return p
		}
	}
	p, err := os.Executable()
	if err != nil {
		b.Skipf("no ELF to benchmark: %v", err)
	}
	return p
}

func BenchmarkLoad(b *testing.B) {
	path := benchELF(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for b.Loop() {
		tab, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		n = tab.Len()
	}
	b.ReportMetric(float64(n), "symbols")
	b.ReportMetric(float64(st.Size())/1e6, "file-MB")
}

func BenchmarkSymbolize(b *testing.B) {
	tab, err := Load(benchELF(b))
	if err != nil {
		b.Fatal(err)
	}
	fns := tab.Functions()
	if len(fns) == 0 {
		b.Skip("no functions")
	}
	i := 0
	for b.Loop() {
		f := fns[i%len(fns)]
		tab.Symbolize(f.Addr + f.Size/2)
		i += 7919
	}
}

func BenchmarkResolveUnknown(b *testing.B) {
	tab, err := Load(benchELF(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tab.Resolve("no_such_function_name")
	}
}

// dwarfELFs are the ELF files BenchmarkSourceLookup measures: the demo
// guest, $LOCKSTEP_BENCH_DWARF when set, and the first Debian -dbg vmlinux
// testdata/linux/fetch.sh cached ($LOCKSTEP_LINUX_CACHE, default
// ~/.cache/lockstep/linux). A missing one is skipped with the reason.
func dwarfELFs(b *testing.B) []struct{ name, path, skip string } {
	out := []struct{ name, path, skip string }{{name: "demo-guest", path: qemutest.Guest(b, "demo-good")}}
	if p := os.Getenv("LOCKSTEP_BENCH_DWARF"); p != "" {
		out = append(out, struct{ name, path, skip string }{name: "bench-dwarf", path: p})
	}
	cache := os.Getenv("LOCKSTEP_LINUX_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "lockstep", "linux")
		}
	}
	v := struct{ name, path, skip string }{name: "vmlinux"}
	if m, _ := filepath.Glob(filepath.Join(cache, "*", "vmlinux")); len(m) > 0 {
		v.path = m[0]
	} else {
		v.skip = fmt.Sprintf("no Debian -dbg vmlinux cached in %s: run testdata/linux/fetch.sh (downloads ~1.3 GB)", cache)
	}
	return append(out, v)
}

// BenchmarkSourceLookup measures Source on each of dwarfELFs:
//   - first: Load, then one lookup (open the DWARF, index the units'
//     ranges, index one unit's lines and inlined calls);
//   - all-units: Load, then a lookup in every function, which indexes
//     every unit that has code;
//   - lookup: one lookup in a warm index (per address).
func BenchmarkSourceLookup(b *testing.B) {
	for _, e := range dwarfELFs(b) {
		b.Run(e.name, func(b *testing.B) {
			if e.skip != "" {
				b.Skip(e.skip)
			}
			st, err := os.Stat(e.path)
			if err != nil {
				b.Fatal(err)
			}
			tab, err := Load(e.path)
			if err != nil {
				b.Fatal(err)
			}
			fns := tab.Functions()
			if len(fns) == 0 {
				b.Skip("no functions")
			}
			// The first lookup is at the entry point, else at the
			// first function with a line.
			entry := tab.Entry()
			for i := 0; i < len(fns); i++ {
				if _, _, _, ok := tab.Source(entry); ok {
					break
				}
				entry = fns[i].Addr
			}
			b.Run("first", func(b *testing.B) {
				for b.Loop() {
					tab, err := Load(e.path)
					if err != nil {
						b.Fatal(err)
					}
					if _, _, _, ok := tab.Source(entry); !ok {
						b.Fatalf("no line at %#x: %v", entry, tab.SourceErr())
					}
				}
				b.ReportMetric(float64(st.Size())/1e6, "file-MB")
			})
			b.Run("all-units", func(b *testing.B) {
				var found int
				for b.Loop() {
					tab, err := Load(e.path)
					if err != nil {
						b.Fatal(err)
					}
					found = 0
					for _, f := range fns {
						if _, _, _, ok := tab.Source(f.Addr); ok {
							found++
						}
					}
				}
				b.ReportMetric(float64(len(fns)), "functions")
				b.ReportMetric(float64(found), "with-line")
			})
			b.Run("lookup", func(b *testing.B) {
				for _, f := range fns {
					tab.Source(f.Addr)
				}
				i := 0
				for b.Loop() {
					f := fns[i%len(fns)]
					tab.Source(f.Addr + f.Size/2)
					i += 7919
				}
			})
		})
	}
}
