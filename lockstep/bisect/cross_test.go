package bisect_test

import (
	"math"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/bisect"
	"github.com/lockstep-dev/lockstep/lockstep/bisect/bisecttest"
)

// TestCrossBisectFindsRegression is the bisect acceptance of issue 11 on
// aarch64, riscv64 and s390x: a history of 8 commits of the demo kernel
// built with the Debian cross compiler (testdata/bisect/cross.mk), the
// build broken at the first midpoint (4, fixed by 5) and the regression
// planted at 6. lockstep bisect must name commit 6 exactly, skip the
// broken build, and leave the repository as it was.
func TestCrossBisectFindsRegression(t *testing.T) {
	spec := bisecttest.Spec{Commits: 8, Broken: 4, Regression: 6}
	for _, arch := range []string{"aarch64", "riscv64", "s390x"} {
		t.Run(arch, func(t *testing.T) {
			spec := spec
			spec.Arch = arch
			repo, hashes, cfg := setup(t, spec, "demo")
			out, _ := bisectClean(t, repo, hashes, cfg)

			if out.FirstBad.Hash != hashes[spec.Regression] || out.FirstBad.Subject != "plant the regression" {
				t.Errorf("first bad %s %q, want %s (commit %d)", out.FirstBad.Short(), out.FirstBad.Subject,
					hashes[spec.Regression], spec.Regression)
			}
			if len(out.Ambiguous) != 0 {
				t.Errorf("ambiguous: %v", out.Ambiguous)
			}
			// The bad end, log2 midpoints, the skipped build, and one
			// more: git replaces a skipped midpoint by a neighbour its
			// PRNG picks from the commit list, whose order follows the
			// fixture's hashes (any change to the copied guest sources
			// moves it), and an off-centre neighbour can cost a step.
			if max := int(math.Ceil(math.Log2(float64(spec.Commits)))) + 3; len(out.Steps) > max {
				t.Errorf("%d steps, want at most %d", len(out.Steps), max)
			}
			var skipped bool
			for _, s := range out.Steps {
				i := indexOf(hashes, s.Commit.Hash)
				switch {
				case i == spec.Broken:
					skipped = s.Verdict == bisect.Skip && strings.Contains(s.Reason, "build failed")
				case i >= spec.Regression && s.Verdict != bisect.Bad:
					t.Errorf("commit %d (regressed) judged %s %s", i, s.Verdict, s.Reason)
				case i < spec.Regression && s.Verdict != bisect.Good:
					t.Errorf("commit %d (not regressed) judged %s %s", i, s.Verdict, s.Reason)
				}
			}
			if !skipped {
				t.Errorf("broken commit %d was not tested and skipped for its build", spec.Broken)
			}
			if !out.Steps[0].BadEnd || out.Steps[0].Verdict != bisect.Bad {
				t.Errorf("step 1 is %+v, want the bad end, bad", out.Steps[0])
			}
			// demo.c's first planted difference is the call path at leaf
			// (path_b instead of path_a): the cross unwinder must see it.
			if out.Signature != (bisect.Signature{Kind: "callpath", Symbol: "leaf"}) {
				t.Errorf("signature %s, want callpath at leaf", out.Signature)
			}
			if out.Result == nil || out.Result.Outcome != lockstep.OutcomeDiverged || !bisect.Matches(out.Result, out.Signature) {
				t.Fatalf("first bad commit's result is missing or does not show %s", out.Signature)
			}
		})
	}
}

func indexOf(hashes []string, h string) int {
	for i, x := range hashes {
		if x == h {
			return i
		}
	}
	return -1
}
