package suite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/reports"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestSuiteSharesSymbols runs 20 scenarios naming the same kernel ELF
// through the real lockstep.Run, two at a time, with a QEMU that does not
// exist (so that each run loads its symbols, then fails to start, as an
// infrastructure failure, without starting anything): the suite's cache
// reads the ELF once, where 20 runs without it read it 20 times.
func TestSuiteSharesSymbols(t *testing.T) {
	t.Parallel()
	p, noQEMU := noQEMUPlan(t, 20)
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

// noQEMUPlan is n copies of demo-self whose QEMU binary does not exist.
func noQEMUPlan(t *testing.T, n int) (*Plan, string) {
	t.Helper()
	kernel := qemutest.Guest(t, "demo-good")
	noQEMU := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	p := &Plan{Name: "no-qemu"}
	for i := range n {
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
	return p, noQEMU
}

// TestOptionalSkipped runs, through the real lockstep.Run, scenarios
// whose QEMU does not exist and one that asks for KVM where /dev/kvm
// cannot be opened: optional ones are skipped with the reason, the
// others are infrastructure failures; JUnit marks the skipped ones
// <skipped>; a suite of skipped scenarios only does not pass.
func TestOptionalSkipped(t *testing.T) {
	t.Parallel()
	p, noQEMU := noQEMUPlan(t, 3)
	p.Entries[0].Optional = true
	p.Entries[2].Optional = true
	if _, err := os.Stat("/dev/kvm"); err != nil {
		// No KVM here: the third asks for it with a QEMU that exists.
		qemutest.Require(t, "x86_64")
		for g := range p.Entries[2].Scenario.Guests {
			p.Entries[2].Scenario.Guests[g].QEMU = ""
			p.Entries[2].Scenario.Guests[g].Accel = "kvm"
		}
	}
	out := t.TempDir()
	x, err := Run(context.Background(), p, p.Names(), Options{Jobs: 2, OutDir: out, Formats: []reports.Format{reports.FormatJUnit}, Run: lockstep.Options{RunDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{StatusSkipped, StatusInfra, StatusSkipped}
	for i, r := range x.Results {
		if r.Status != want[i] {
			t.Errorf("%s (optional %v): %s %q, want %s", r.Name, p.Entries[i].Optional, r.Status, r.Error, want[i])
		}
	}
	if r := x.Results[0]; !strings.Contains(r.Error, "optional, cannot run here: ") || !strings.Contains(r.Error, noQEMU) {
		t.Errorf("skip reason %q does not name the missing QEMU", r.Error)
	}
	if x.Passed() {
		t.Error("a suite with an infrastructure failure and skips passed")
	}
	var junit bytes.Buffer
	if err := RenderJUnit(&junit, out, x); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(junit.String(), "<skipped "); n != 2 {
		t.Errorf("%d <skipped> cases, want 2:\n%s", n, junit.String())
	}
	f := filepath.Join(out, "merged.xml")
	if err := os.WriteFile(f, junit.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	validateJUnit(t, f)

	only := &Index{Planned: []string{"a", "b"}, Results: []ScenarioResult{{Name: "a", Status: StatusSkipped}, {Name: "b", Status: StatusSkipped}}}
	only.count()
	if only.Passed() {
		t.Error("a suite whose every scenario was skipped passed: nothing compared is not a pass")
	}
	only.Results[1].Status = StatusPassed
	only.count()
	if !only.Passed() {
		t.Error("one passed and one optional skipped is a pass")
	}
}

// TestSuiteQEMUBudget runs four scenarios that localise (each keeps its
// pair while a second one, or a traced pair, localises: up to six QEMUs
// each) with -j 3 under a budget of four QEMUs, on real QEMU: the QEMUs
// seen alive under the run directory never exceed the budget plus the
// overdrafts the index reports, nor one scenario's six; every scenario
// still reaches its verdict, and nothing is left running. (Unbounded,
// -j 3 had 12 alive at once here.)
func TestSuiteQEMUBudget(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	p, err := Collect([]string{filepath.Join(qemutest.Root(t), "testdata", "suites", "guests.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"demo-regression", "cpu-models", "deep", "rm16-regression"}
	p.Entries = slices.DeleteFunc(p.Entries, func(e Entry) bool { return !slices.Contains(want, e.Name) })
	if len(p.Entries) != len(want) {
		t.Fatalf("suite entries %v, want %v", p.Names(), want)
	}
	for _, e := range p.Entries {
		for _, g := range e.Scenario.Guests {
			if _, err := os.Stat(g.Kernel); err != nil {
				t.Skipf("%s: guest not built (make -C testdata/guests): %v", e.Name, err)
			}
		}
	}
	runDir := qemutest.ShortDir(t)
	s := sample(runDir, 10*time.Millisecond)
	x, err := Run(t.Context(), p, p.Names(), Options{Jobs: 3, QEMUs: 4, OutDir: t.TempDir(),
		Formats: []reports.Format{reports.FormatJSON}, Run: lockstep.Options{RunDir: runDir}})
	seen, _ := s.end()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range x.Results {
		if r.Status != StatusPassed {
			t.Errorf("%s: %s %s %s", r.Name, r.Status, r.Outcome, r.Error)
		}
	}
	q := x.QEMUs
	if q == nil || q.Budget != 4 {
		t.Fatalf("index QEMUs %+v, want budget 4", q)
	}
	if seen > q.Budget+q.Overdrafts || q.Peak > q.Budget+q.Overdrafts || q.Peak < seen {
		t.Errorf("seen %d alive, index %+v: want at most budget + overdrafts", seen, *q)
	}
	// A budget of four admits one scenario at a time (a pair and room
	// for a localisation pair): more than one scenario's QEMUs were
	// never alive at once, though -j 3 would allow three.
	if seen > 6 {
		t.Errorf("%d QEMUs alive at once: more than one scenario's", seen)
	}
	t.Logf("budget %d: peak %d (seen %d), %d waits, %d overdrafts", q.Budget, q.Peak, seen, q.Waits, q.Overdrafts)
	qemutest.NoQEMUUnder(t, runDir)
}
