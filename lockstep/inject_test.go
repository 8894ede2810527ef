package lockstep_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestInjectAllocFailure is the acceptance test of fault injection: the
// allocator guest on both sides, alloc's 3rd return forced to NULL on b at
// a sync point. The injection is reported as a deliberate difference and
// not as a divergence where it was set; the recovery makes the results
// differ at report, and localisation names the first consequence, the
// NULL test in make_item. Without the injection the pair is identical.
func TestInjectAllocFailure(t *testing.T) {
	// Both ways back to sync point 2 re-apply the injection (and report
	// it once): a relaunch replays it, a snapshot was saved before it.
	for _, mode := range []string{scenario.CheckpointRestart, scenario.CheckpointSnapshot} {
		t.Run(mode, func(t *testing.T) {
			sc := load(t, "alloc-inject.yaml")
			sc.Localize.Checkpoint = mode
			checkAllocInjected(t, runScenario(t, sc))
		})
	}

	clean := load(t, "alloc-inject.yaml")
	clean.Inject = nil
	clean.Expect = "identical"
	res := runScenario(t, clean)
	if res.Outcome != lockstep.OutcomeIdentical || !res.Passed || len(res.Injections) != 0 {
		t.Errorf("without the injection: outcome %s passed %v injections %v, want identical", res.Outcome, res.Passed, res.Injections)
	}
}

func checkAllocInjected(t *testing.T, res *lockstep.Result) {
	t.Helper()
	if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
		t.Fatalf("outcome %s passed %v, want diverged, passed (expect: diverge); notes %v", res.Outcome, res.Passed, res.Notes)
	}
	if len(res.Injections) != 1 {
		t.Fatalf("injections %+v, want one", res.Injections)
	}
	in := res.Injections[0]
	if in.Side != "b" || in.Sync != 1 || in.PC.Symbol != "make_item" || in.Set != "rax=0x0" {
		t.Errorf("injection %+v, want b at sync point 2 in make_item, rax=0x0", in)
	}
	if res.Syncs[1].Status != lockstep.SyncMatch {
		t.Errorf("sync point 2 (where rax was set) is %s, want match: the injection is not a divergence there", res.Syncs[1].Status)
	}
	mem := byKind(res, compare.KindMemory)
	if len(mem) == 0 || mem[0].Sync != 2 || !strings.Contains(mem[0].Summary, "results") {
		t.Errorf("no results divergence at report: %+v", mem)
	}
	var first *compare.Divergence
	for i, d := range res.Divergences {
		if d.Kind == compare.KindInstruction && d.Instruction != nil && !strings.Contains(d.Summary, "write") {
			first = &res.Divergences[i]
			break
		}
	}
	if first == nil {
		t.Fatalf("the first consequence was not localised: %+v", res.Divergences)
	}
	if first.PC[1].Symbol != "make_item" || !strings.Contains(first.Summary, "test") || !strings.Contains(first.Summary, "eflags") {
		t.Errorf("first consequence %q at %v, want make_item's test of the NULL (eflags)", first.Summary, first.PC[1])
	}
	// The stores localised are the error path's: results[2] gets 0xdead.
	found := false
	for _, d := range res.Divergences {
		if d.Kind == compare.KindInstruction && strings.Contains(d.Summary, "results+0x10") && strings.Contains(d.Summary, "0xdead") {
			found = true
		}
	}
	if !found {
		t.Errorf("the store of 0xdead to results[2] was not localised: %+v", res.Divergences)
	}
}

// TestInjectAllocReturnHit: the injection at alloc's return, 3rd call,
// with no sync point there: it fires on b only, in make_item, and only
// results[2] onwards differ (the 1st and 2nd calls were left alone).
func TestInjectAllocReturnHit(t *testing.T) {
	sc := load(t, "alloc-inject-return.yaml")
	res := runScenario(t, sc)
	if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
		t.Fatalf("outcome %s passed %v; notes %v", res.Outcome, res.Passed, res.Notes)
	}
	if len(res.Injections) != 1 || res.Injections[0].Where != "return of alloc (call 3)" || res.Injections[0].PC.Symbol != "make_item" {
		t.Fatalf("injections %+v", res.Injections)
	}
	mem := byKind(res, compare.KindMemory)
	if len(mem) != 1 || mem[0].Memory == nil {
		t.Fatalf("memory divergences %+v", mem)
	}
	if !strings.Contains(mem[0].Summary, "first at +0x10") {
		t.Errorf("%q: want results[2] (+0x10) the first to differ: the 3rd call, not an earlier one", mem[0].Summary)
	}
}
