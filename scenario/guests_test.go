package scenario_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestExampleSymbolsResolve checks every example scenario against the real
// guest ELFs (built with make if missing): each break, memory symbol and
// trace function must resolve on both sides.
func TestExampleSymbolsResolve(t *testing.T) {
	files, err := filepath.Glob("../testdata/scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := scenario.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			var res [2]scenario.Resolver
			for i, g := range s.Guests {
				// Guest builds the ELF if missing and returns the same path;
				// CrossGuest for build/<arch>/, skipping without the
				// cross compiler.
				name := strings.TrimSuffix(filepath.Base(g.Symbols), ".elf")
				if dir := filepath.Base(filepath.Dir(g.Symbols)); dir != "build" {
					qemutest.CrossGuest(t, dir, name)
				} else {
					qemutest.Guest(t, name)
				}
				tab, err := symbols.Load(g.Symbols)
				if err != nil {
					t.Fatalf("guest %s: %v", g.Side, err)
				}
				res[i] = tab
			}
			if err := s.CheckSymbols(res); err != nil {
				t.Errorf("CheckSymbols:\n%v", err)
			}
		})
	}
}
