package symbols

import (
	"debug/elf"
	"os/exec"
	"strings"
	"testing"
)

// TestMappingSymbolsCross checks, on ELFs built by the aarch64 and riscv64
// cross toolchains, that the mapping symbols they emit ($x, $d,
// $xrv64i2p1...) never name an address: the entry label does.
func TestMappingSymbolsCross(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ gcc, src, text string }{
		{"aarch64-linux-gnu-gcc", "testdata/mapsyms-a64.S", "0x40080000"},
		{"riscv64-linux-gnu-gcc", "testdata/mapsyms-rv.S", "0x80000000"},
	} {
		t.Run(tc.gcc, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(tc.gcc); err != nil {
				t.Skipf("%s not installed (Debian package gcc-%s): %v", tc.gcc, strings.TrimSuffix(tc.gcc, "-gcc"), err)
			}
			out := t.TempDir() + "/m.elf"
			if b, err := exec.Command(tc.gcc, "-nostdlib", "-static", "-no-pie", "-Wl,-Ttext="+tc.text,
				"-o", out, tc.src).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", tc.gcc, err, b)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := f.Symbols()
			f.Close()
			var maps []elf.Symbol
			for _, s := range raw {
				if strings.HasPrefix(s.Name, "$") {
					maps = append(maps, s)
				}
			}
			if len(maps) == 0 {
				t.Fatalf("the toolchain emitted no mapping symbols: nothing to check")
			}
			tab, err := Load(out)
			if err != nil {
				t.Fatal(err)
			}
			start := addr(t, tab, "_start")
			helper := addr(t, tab, "helper")
			for _, m := range maps {
				if m.Value < start || m.Value >= helper {
					continue
				}
				got, _ := tab.Symbolize(m.Value)
				if got.Symbol != "_start" {
					t.Errorf("Symbolize(%#x) at %s = %s, want _start+%#x", m.Value, m.Name, got, m.Value-start)
				}
			}
			for _, m := range maps {
				if _, ok := tab.Lookup(m.Name); ok {
					t.Errorf("Lookup(%q) found a mapping symbol", m.Name)
				}
			}
			if got, _ := tab.Symbolize(helper + 4); got.String() != "helper+0x4" {
				t.Errorf("Symbolize(helper+4) = %s", got)
			}
			t.Logf("%d mapping symbols, none names an address", len(maps))
		})
	}
}
