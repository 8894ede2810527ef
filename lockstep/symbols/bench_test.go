package symbols

import (
	"os"
	"testing"
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
