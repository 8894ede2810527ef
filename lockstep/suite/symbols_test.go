package suite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestSuiteSharesSymbols runs 20 scenarios naming the same kernel ELF
// through the real lockstep.Run, two at a time, with a QEMU that does not
// exist (so that each run loads its symbols, then fails to start, as an
// infrastructure failure, without starting anything): the suite's cache
// reads the ELF once, where 20 runs without it read it 20 times.
func TestSuiteSharesSymbols(t *testing.T) {
	t.Parallel()
	kernel := qemutest.Guest(t, "demo-good")
	noQEMU := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	p := &Plan{Name: "shared"}
	for i := range 20 {
		sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", "demo-self.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		sc.Name = fmt.Sprintf("demo-self-%02d", i)
		for g := range sc.Guests {
			if sc.Guests[g].Kernel != kernel || sc.Guests[g].Symbols != kernel {
				t.Fatalf("guest %d: kernel %q symbols %q, want %q", g, sc.Guests[g].Kernel, sc.Guests[g].Symbols, kernel)
			}
			sc.Guests[g].QEMU = noQEMU
		}
		p.Entries = append(p.Entries, Entry{Name: sc.Name, Scenario: sc})
	}
	cache := symbols.NewCache()
	x, err := Run(context.Background(), p, p.Names(), Options{Jobs: 2, OutDir: t.TempDir(), Run: lockstep.Options{Symbols: cache, RunDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if x.Counts[StatusInfra] != 20 {
		t.Fatalf("counts %v, want 20 infrastructure failures", x.Counts)
	}
	for _, r := range x.Results {
		if !strings.Contains(r.Error, noQEMU) && !strings.Contains(r.Error, "qemu") {
			t.Errorf("%s: %s (want the missing QEMU)", r.Name, r.Error)
		}
	}
	if n := cache.Loads(); n != 1 {
		t.Errorf("20 scenarios read the kernel's symbols %d times, want once", n)
	}

	// Without a cache given, the suite makes one that every scenario shares.
	var seen []*symbols.Cache
	Run(context.Background(), p, p.Names()[:3], Options{Jobs: 1, OutDir: t.TempDir(), RunFunc: func(_ context.Context, e Entry, o lockstep.Options) (*lockstep.Result, error) {
		seen = append(seen, o.Symbols)
		return nil, lockstep.ErrInfrastructure
	}})
	if len(seen) != 3 || seen[0] == nil || seen[1] != seen[0] || seen[2] != seen[0] {
		t.Errorf("the scenarios got caches %v, want one shared", seen)
	}
}
