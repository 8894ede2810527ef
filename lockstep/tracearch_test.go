package lockstep_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// traceArches are the cross architectures the trace engine reads.
var traceArches = []string{"aarch64", "riscv64", "s390x"}

func crossArchOf(t *testing.T, arch string) crossArch {
	t.Helper()
	for _, c := range crossArches {
		if c.arch == arch {
			return c
		}
	}
	t.Fatalf("no cross architecture %s", arch)
	return crossArch{}
}

// sameLocalisation checks that the trace engine (byTrace) and gdbstub
// stepping (bySteps) found the same instruction: step, PCs, disassembly,
// and the registers that differ after it, by the gdbstub's names.
func sameLocalisation(t *testing.T, byTrace, bySteps compare.Divergence) {
	t.Helper()
	if strings.Contains(bySteps.Summary, "trace") || !strings.Contains(byTrace.Summary, "trace") {
		// "by trace" (localisation), "(trace engine)" (step window).
		t.Fatalf("summaries %q / %q, want trace then gdbstub", byTrace.Summary, bySteps.Summary)
	}
	if byTrace.Step != bySteps.Step || !byTrace.PC[0].SameCode(bySteps.PC[0]) || !byTrace.PC[1].SameCode(bySteps.PC[1]) {
		t.Errorf("trace: step %d at %v; gdbstub: step %d at %v", byTrace.Step, byTrace.PC, bySteps.Step, bySteps.PC)
	}
	ti, si := byTrace.Instruction, bySteps.Instruction
	if ti.Disasm != si.Disasm || ti.Bytes != si.Bytes || len(ti.Registers) != len(si.Registers) {
		t.Errorf("trace %+v\ngdbstub %+v", ti, si)
	}
	for i := range min(len(ti.Registers), len(si.Registers)) {
		if ti.Registers[i].Name != si.Registers[i].Name || ti.Registers[i].Values != si.Registers[i].Values {
			t.Errorf("register %d: trace %+v, gdbstub %+v", i, ti.Registers[i], si.Registers[i])
		}
	}
}

// TestCrossTraceMatchesStepping localises deep-1e3 on two CPU models of
// aarch64, riscv64 and s390x (one binary) with the trace engine and with gdbstub
// stepping: both must name the same instruction, the one reading the CPU
// model, with the same registers.
func TestCrossTraceMatchesStepping(t *testing.T) {
	for _, arch := range traceArches {
		t.Run(arch, func(t *testing.T) {
			c := crossArchOf(t, arch)
			byTrace := localised(t, loadCross(t, c, "deep"), lockstep.Options{})
			bySteps := localised(t, loadCross(t, c, "deep"), lockstep.Options{NoTraceEngine: true})
			checkFeatureRead(t, c, byTrace)
			sameLocalisation(t, byTrace, bySteps)
			t.Logf("%s", byTrace.Summary)
		})
	}
}

// TestCrossTraceStepWindow runs a step window of 5,000 instructions
// (engine.TraceWindowMin) from deep_start on deep-1e3, which goes through
// the trace engine, and one of 4,999 instructions, which steps through the
// gdbstub: both stop at the instruction reading the CPU model, at the same
// step, with the same registers.
func TestCrossTraceStepWindow(t *testing.T) {
	for _, arch := range traceArches {
		t.Run(arch, func(t *testing.T) {
			c := crossArchOf(t, arch)
			var got [2]compare.Divergence
			for i, window := range []int{5000, 4999} {
				sc := loadCross(t, c, "deep")
				sc.Sync = sc.Sync[:1]
				sc.Sync[0].Step = window
				sc.Localize.Enabled = false
				res := runScenario(t, sc)
				ins := byKind(res, compare.KindInstruction)
				if len(ins) != 1 {
					t.Fatalf("window %d: instruction divergences %+v, want 1 (notes %v)", window, res.Divergences, res.Notes)
				}
				checkFeatureRead(t, c, ins[0])
				if ins[0].Step <= 0 || ins[0].Step >= window || res.Syncs[0].Steps != ins[0].Step {
					t.Errorf("window %d: step %d, window steps %d", window, ins[0].Step, res.Syncs[0].Steps)
				}
				got[i] = ins[0]
			}
			if !strings.Contains(got[0].Summary, "(trace engine)") {
				t.Errorf("summary %q, want the trace engine", got[0].Summary)
			}
			sameLocalisation(t, got[0], got[1])
		})
	}
}

// TestCrossTraceLong localises deep-1e5 on two CPU models of aarch64,
// riscv64 and s390x with the trace engine: about 100,000 instructions compared from
// deep_start, too many to step through the gdbstub in a test, down to the
// instruction reading the CPU model.
func TestCrossTraceLong(t *testing.T) {
	for _, arch := range traceArches {
		t.Run(arch, func(t *testing.T) {
			c := crossArchOf(t, arch)
			sc := loadCross(t, c, "deep")
			elf := qemutest.CrossGuest(t, arch, "deep-1e5")
			for i := range sc.Guests {
				sc.Guests[i].Kernel, sc.Guests[i].Symbols = elf, elf
			}
			d := localised(t, sc, lockstep.Options{})
			checkFeatureRead(t, c, d)
			// deep-1e3's divergence is 891 (s390x) to 1,055 (riscv64)
			// instructions deep: about 100 times that here.
			if !strings.Contains(d.Summary, "by trace") || d.Step < 85_000 || d.Step > 110_000 {
				t.Errorf("%s at step %d, want by trace at 85,000 to 110,000", d.Summary, d.Step)
			}
		})
	}
}
