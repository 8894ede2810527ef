package calibrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseRangeName checks that every memory name parseRangeName accepts
// is printed back by rangeName to a name that parses to the same range. It
// is seeded with the memory names of the tsc scenarios.
func FuzzParseRangeName(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "scenarios", "tsc*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatal("no tsc*.yaml scenarios to seed from")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if _, sym, ok := strings.Cut(line, "symbol: "); ok {
				sym = strings.TrimSpace(sym)
				f.Add(sym)
				f.Add(sym + "+0x10")
			}
		}
	}
	f.Add("0x1000")
	f.Add("0x")
	f.Add("sym+10")
	f.Fuzz(func(t *testing.T, name string) {
		m, ok := parseRangeName(name)
		if !ok {
			return
		}
		back, ok := parseRangeName(rangeName(m))
		if !ok || back != m {
			t.Errorf("%q parsed to %+v, printed %q, parsed back to %+v (%v)", name, m, rangeName(m), back, ok)
		}
	})
}
