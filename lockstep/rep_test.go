package lockstep_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Instruction granularity across QEMU versions (issue 9, item 6): a REP
// string instruction is one instruction, compared at its retirement, in
// step windows, stepping localisation and the trace engine. rep.elf runs
// rep stosq, rep movsb and repe cmpsb after rep_start; rep-diverge puts a
// device on the port rep_work reads after them, on side b only.

// repScenario loads name with rep.elf on both sides and, when qemuB is
// set, side b on that QEMU binary.
func repScenario(t *testing.T, name, qemuB string) *scenario.Scenario {
	t.Helper()
	sc := withGuest(t, load(t, name), "rep")
	if qemuB != "" {
		sc.Guests[1].QEMU = qemuB
	}
	return sc
}

// stepWindowAcrossRep checks that the step window over the three REPs
// matches, and that sync point 2 is reached and matches: each REP counted
// once on both sides, whatever QEMU does per iteration.
func stepWindowAcrossRep(t *testing.T, qemuB string) {
	res := runScenario(t, repScenario(t, "rep.yaml", qemuB))
	if res.Outcome != lockstep.OutcomeIdentical || len(res.Divergences) != 0 {
		t.Fatalf("outcome %v, divergences %+v, notes %q; want identical", res.Outcome, res.Divergences, res.Notes)
	}
	if s := res.Syncs[0].Steps; s != 36 {
		t.Errorf("step window of %d instructions, want 36", s)
	}
	t.Logf("sides: %s / %s", res.Sides[0].Version, res.Sides[1].Version)
}

func TestStepWindowAcrossRep(t *testing.T) { stepWindowAcrossRep(t, "") }

func TestStepWindowAcrossRepQEMU10(t *testing.T) {
	stepWindowAcrossRep(t, qemutest.RequireQEMU10(t))
}

// localiseAfterRep checks that the real first divergence, the `in` after
// the REPs (instruction 29 after rep_start, counting each REP once), is
// what the trace engine, gdbstub stepping and a step window find.
func localiseAfterRep(t *testing.T, qemuB string) {
	check := func(t *testing.T, d compare.Divergence, how string) {
		t.Helper()
		id := d.Instruction
		if id == nil || id.Bytes != [2]string{"e4f8", "e4f8"} || d.PC[0].Symbol != "rep_work" || d.Step != 29 {
			t.Fatalf("%s: localised %q (step %d, %+v), want the in $0xf8 in rep_work at step 29", how, d.Summary, d.Step, id)
		}
		if !strings.Contains(d.Summary, how) {
			t.Errorf("summary %q, want %q", d.Summary, how)
		}
		if strings.Contains(d.Summary, "REP string") {
			t.Errorf("summary %q says the divergence is inside a REP", d.Summary)
		}
	}
	t.Run("trace", func(t *testing.T) {
		check(t, localised(t, repScenario(t, "rep-diverge.yaml", qemuB), lockstep.Options{}), "by trace")
	})
	t.Run("stepping", func(t *testing.T) {
		check(t, localised(t, repScenario(t, "rep-diverge.yaml", qemuB), lockstep.Options{NoTraceEngine: true}), "localised")
	})
	t.Run("window", func(t *testing.T) {
		sc := repScenario(t, "rep-diverge.yaml", qemuB)
		sc.Sync[0].Step = 36
		res := runScenario(t, sc)
		ins := byKind(res, compare.KindInstruction)
		if len(ins) == 0 || ins[0].Sync != 0 {
			t.Fatalf("instruction divergences %+v (notes %q), want one in the step window", ins, res.Notes)
		}
		check(t, ins[0], "step window")
	})
}

func TestLocaliseAfterRep(t *testing.T) { localiseAfterRep(t, "") }

func TestLocaliseAfterRepQEMU10(t *testing.T) {
	localiseAfterRep(t, qemutest.RequireQEMU10(t))
}

// localiseInsideRep checks the per-iteration view: rep-inrep's second
// repe cmpsb (instruction 25) stops after 6 iterations on b and runs all
// 8 on a; every path names it and gives both iteration counts.
func localiseInsideRep(t *testing.T, qemuB string) {
	const want = "inside a REP string instruction (compared at its retirement): 8 iterations on a, 6 on b (b stopped at iteration 6)"
	check := func(t *testing.T, d compare.Divergence, how string) {
		t.Helper()
		id := d.Instruction
		if id == nil || id.Bytes != [2]string{"f3a6", "f3a6"} || d.PC[0].Symbol != "rep_work" || d.Step != 25 {
			t.Fatalf("%s: localised %q (step %d, %+v), want the second repe cmpsb in rep_work at step 25", how, d.Summary, d.Step, id)
		}
		if !strings.Contains(d.Summary, how) || !strings.Contains(d.Summary, want) {
			t.Errorf("summary %q, want %q and %q", d.Summary, how, want)
		}
	}
	t.Run("trace", func(t *testing.T) {
		check(t, localised(t, repScenario(t, "rep-inrep.yaml", qemuB), lockstep.Options{}), "by trace")
	})
	t.Run("stepping", func(t *testing.T) {
		check(t, localised(t, repScenario(t, "rep-inrep.yaml", qemuB), lockstep.Options{NoTraceEngine: true}), "localised")
	})
	t.Run("window", func(t *testing.T) {
		sc := repScenario(t, "rep-inrep.yaml", qemuB)
		sc.Sync[0].Step = 36
		res := runScenario(t, sc)
		ins := byKind(res, compare.KindInstruction)
		if len(ins) == 0 || ins[0].Sync != 0 {
			t.Fatalf("instruction divergences %+v (notes %q), want one in the step window", ins, res.Notes)
		}
		check(t, ins[0], "step window")
	})
}

func TestLocaliseInsideRep(t *testing.T) { localiseInsideRep(t, "") }

func TestLocaliseInsideRepQEMU10(t *testing.T) {
	localiseInsideRep(t, qemutest.RequireQEMU10(t))
}
