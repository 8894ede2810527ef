package lockstep_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
)

// TestStepWindowAfterDifference steps cpu-probe on qemu64 against max
// from the CPUID sync point, where rcx and r8 already differ: the first
// step must not be blamed for them, and any instruction reported later
// says they already differed (issue 15, item 1).
func TestStepWindowAfterDifference(t *testing.T) {
	t.Parallel()
	sc := load(t, "cpu-models.yaml")
	sc.Sync[0].Step = 12
	res := runScenario(t, sc)
	regs := byKind(res, compare.KindRegister)
	if len(regs) == 0 || regs[0].Sync != 0 {
		t.Fatalf("no register divergence at cpuid_result: %+v", res.Divergences)
	}
	for _, d := range byKind(res, compare.KindInstruction) {
		if d.Sync != 0 {
			continue
		}
		if d.Step == 1 {
			t.Errorf("step 1 blamed for a difference that was there before it: %s", d.Summary)
		}
		if !strings.Contains(d.Summary, "already differed when stepping began") {
			t.Errorf("instruction divergence %q does not say what already differed", d.Summary)
		}
	}
	if s := res.Syncs[0].Steps; s < 2 {
		t.Errorf("the window stopped after %d steps", s)
	}
}
