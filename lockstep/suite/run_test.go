package suite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/reports"
	"github.com/lockstep-dev/lockstep/scenario"
)

// fakePlan is a plan of n scenarios that run no QEMU.
func fakePlan(names ...string) *Plan {
	p := &Plan{Name: "fake"}
	for _, n := range names {
		p.Entries = append(p.Entries, Entry{Name: n, File: n + ".yaml", Scenario: &scenario.Scenario{Name: n}})
	}
	return p
}

// fakeRun decides a scenario's result by its name: "fail-*" diverges
// where identical was expected, "infra-*" fails with an infrastructure
// error on its first attempts, "big-*" diverges with 64 KiB of memory.
func fakeRun(attempts *atomic.Int32) RunFunc {
	return func(ctx context.Context, e Entry, _ lockstep.Options) (*lockstep.Result, error) {
		attempts.Add(1)
		r := &lockstep.Result{Schema: lockstep.SchemaVersion, Scenario: e.Name, Expect: "identical", Outcome: lockstep.OutcomeIdentical, Passed: true}
		switch {
		case strings.HasPrefix(e.Name, "fail-"):
			r.Outcome, r.Passed = lockstep.OutcomeDiverged, false
			r.Divergences = []compare.Divergence{{Kind: compare.KindRegister, Summary: "rax: 0x1 vs 0x2"}}
		case strings.HasPrefix(e.Name, "big-"):
			r.Outcome, r.Passed = lockstep.OutcomeDiverged, false
			r.Divergences = []compare.Divergence{bigMemory()}
		case strings.HasPrefix(e.Name, "infra-"):
			return nil, fmt.Errorf("start: %w", lockstep.ErrInfrastructure)
		}
		return r, nil
	}
}

func TestRunFake(t *testing.T) {
	t.Parallel()
	p := fakePlan("ok-1", "fail-1", "infra-1", "ok-2")
	var attempts atomic.Int32
	var progress bytes.Buffer
	out := t.TempDir()
	x, err := Run(context.Background(), p, p.Names(), Options{
		Jobs: 2, OutDir: out, Formats: []reports.Format{reports.FormatJSON, reports.FormatJUnit, reports.FormatMarkdown},
		RetryInfra: 2, RunFunc: fakeRun(&attempts), Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := attempts.Load(); got != 6 { // 3 once, infra-1 three times
		t.Errorf("attempts = %d, want 6", got)
	}
	want := map[Status]int{StatusPassed: 2, StatusFailed: 1, StatusInfra: 1}
	if fmt.Sprint(x.Counts) != fmt.Sprint(want) || !x.Complete || x.Passed() {
		t.Errorf("index counts %v complete %v passed %v", x.Counts, x.Complete, x.Passed())
	}
	back, err := ReadIndex(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 4 || back.Schema != IndexSchema {
		t.Errorf("index on disk: %+v", back)
	}
	for _, r := range back.Results {
		if r.Name == "infra-1" && r.Attempts != 3 {
			t.Errorf("infra-1 attempts = %d", r.Attempts)
		}
		if r.Name == "fail-1" && (r.First != "rax: 0x1 vs 0x2" || r.Reports["junit"] != "fail-1.xml") {
			t.Errorf("fail-1 = %+v", r)
		}
	}
	if strings.Count(progress.String(), "start  ") != 4 {
		t.Errorf("progress:\n%s", progress.String())
	}
}
