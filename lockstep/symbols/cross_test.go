package symbols

import (
	"debug/elf"
	"os/exec"
	"regexp"
	"strconv"
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

// TestCFIBigEndian checks that the call-frame information of an s390x
// (big-endian) ELF is read, from .eh_frame and from .debug_frame: every
// FDE readelf lists covers its range, and a prologue's row saves r14 where
// readelf says.
func TestCFIBigEndian(t *testing.T) {
	t.Parallel()
	gcc, readelf := "s390x-linux-gnu-gcc", "s390x-linux-gnu-readelf"
	for _, tool := range []string{gcc, readelf} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package gcc-s390x-linux-gnu): %v", tool, err)
		}
	}
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"eh_frame", []string{"-fasynchronous-unwind-tables"}},
		{"debug_frame", []string{"-g", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir() + "/f.elf"
			args := append([]string{"-O2", "-ffreestanding", "-nostdlib", "-static", "-no-pie", "-Wl,-Ttext=0x10000",
				"-o", out, "../internal/guest/testdata/frames.c"}, tc.flags...)
			if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", gcc, err, b)
			}
			dump, err := exec.Command(readelf, "--debug-dump=frames", out).Output()
			if err != nil {
				t.Fatal(err)
			}
			tab, err := Load(out)
			if err != nil {
				t.Fatal(err)
			}
			cfi, err := tab.CFI()
			if err != nil {
				t.Fatal(err)
			}
			fdes := regexp.MustCompile(`FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)`).FindAllStringSubmatch(string(dump), -1)
			if len(fdes) < 5 || cfi.Len() != len(fdes) {
				t.Fatalf("%d FDEs read, readelf lists %d", cfi.Len(), len(fdes))
			}
			for _, m := range fdes {
				lo, _ := strconv.ParseUint(m[1], 16, 64)
				hi, _ := strconv.ParseUint(m[2], 16, 64)
				for _, pc := range []uint64{lo, hi - 1} {
					row, ok := cfi.Lookup(pc)
					if !ok || row.RA != 14 || row.CFA.Kind != CFIRegOffset {
						t.Errorf("Lookup(%#x) = %+v, %v; want a row with r14 as the return address column", pc, row, ok)
					}
				}
			}
			// A prologue's save of r14, as readelf shows it, is in the row.
			m := regexp.MustCompile(`to ([0-9a-f]+)\n(?:  DW_CFA_[^\n]*\n)*?  DW_CFA_offset: r14 at cfa-(\d+)`).FindStringSubmatch(string(dump))
			if m == nil {
				t.Fatalf("readelf shows no save of r14:\n%s", dump)
			}
			at, _ := strconv.ParseUint(m[1], 16, 64)
			off, _ := strconv.ParseInt(m[2], 10, 64)
			row, ok := cfi.Lookup(at)
			if r := row.Rule(14); !ok || r.Kind != CFIOffset || r.Offset != -off {
				t.Errorf("%#x: row %+v, r14 rule %+v; want r14 at cfa-%d", at, row, r, off)
			}
		})
	}
}
