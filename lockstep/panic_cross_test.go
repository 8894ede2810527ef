package lockstep_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestCrossFailingExitIsDivergence runs a guest that fails, in the way its
// architecture has (s390x: a disabled-wait PSW, a guest panic; aarch64:
// PSCI SYSTEM_RESET, a reset under -no-reboot), against one that ends
// normally; QEMU exits with status 0 after both. Once with the failure
// before the last sync point and once after it, both must diverge, every
// time, with the failing side named as it ended: before issue 11's review
// the s390x panic after the last sync point passed as IDENTICAL (both
// "exited with status 0"), and one before it came out as an arrival, an
// unexplained stop (signal 143) or an infrastructure failure, by timing.
// Each case runs three times for the race.
func TestCrossFailingExitIsDivergence(t *testing.T) {
	for _, c := range []struct {
		arch  string
		ended lockstep.SideState
		text  string
	}{
		{"s390x", lockstep.StatePanicked, "panicked (QEMU exited with status 0)"},
		{"aarch64", lockstep.StateReset, "reset itself (under -no-reboot QEMU exited with status 0)"},
	} {
		for _, tc := range []struct {
			name     string
			lastSync bool // keep only the first sync point: the failure comes after it
			kind     compare.Kind
		}{
			{"before-last-sync", false, compare.KindArrival},
			{"after-last-sync", true, compare.KindExit},
		} {
			t.Run(c.arch+"/"+tc.name, func(t *testing.T) {
				qemutest.CrossGuest(t, c.arch, "demo-exit")
				for try := range 3 {
					sc := loadCross(t, crossArch{arch: c.arch}, "demo-exit")
					if tc.lastSync {
						sc.Sync = sc.Sync[:1]
					}
					res := runScenario(t, sc)
					if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
						t.Fatalf("try %d: outcome %s (error %q), want diverged", try, res.Outcome, res.Error)
					}
					ds := byKind(res, tc.kind)
					if len(ds) != 1 || !strings.Contains(ds[0].Summary, "b "+c.text) && !strings.Contains(ds[0].Summary, "(early-exit) "+c.text) {
						t.Fatalf("try %d: %s divergences %+v, want one saying b %q", try, tc.kind, ds, c.text)
					}
					if tc.kind == compare.KindExit && ds[0].Exit.State != [2]string{"exited", string(c.ended)} {
						t.Errorf("try %d: exit states %v, want exited, %s", try, ds[0].Exit.State, c.ended)
					}
					if res.Sides[1].State != c.ended {
						t.Errorf("try %d: side b state %q, want %s", try, res.Sides[1].State, c.ended)
					}
					if tc.lastSync && res.Sides[0].State != lockstep.StateExited {
						t.Errorf("try %d: side a state %q, want exited", try, res.Sides[0].State)
					}
				}
			})
		}
	}
}

// TestS390xPanicInStepWindow steps through a guest panic (the s390x
// disabled wait) inside a step window: against a guest that ends normally
// it is an exit divergence naming the panic, and with both sides panicking
// at the same instruction the run is identical, twice each. Before,
// QEMU's stop for the panic (signal 143) looked like a step, the next
// register read found QEMU gone, and the run ended as an infrastructure
// failure (exit 3), a false divergence ("a still running, b panicked") or
// identical, by timing.
func TestS390xPanicInStepWindow(t *testing.T) {
	qemutest.CrossGuest(t, "s390x", "demo-exit")
	for _, both := range []bool{false, true} {
		t.Run(map[bool]string{false: "one side", true: "both sides"}[both], func(t *testing.T) {
			for try := range 2 {
				sc := loadCross(t, crossArch{arch: "s390x"}, "panic-window")
				want := lockstep.OutcomeDiverged
				if both {
					sc.Guests[0].Kernel, sc.Guests[0].Symbols = sc.Guests[1].Kernel, sc.Guests[1].Symbols
					want = lockstep.OutcomeIdentical
				}
				res := runScenario(t, sc)
				if res.Outcome != want || res.Error != "" {
					t.Fatalf("try %d: outcome %s (error %q), want %s", try, res.Outcome, res.Error, want)
				}
				if !both {
					ds := byKind(res, compare.KindExit)
					if len(ds) != 1 || ds[0].Exit.State != [2]string{"exited", "panicked"} {
						t.Fatalf("try %d: exit divergences %+v, want a exited, b panicked", try, ds)
					}
				}
				for i, s := range res.Sides {
					if w := map[bool]lockstep.SideState{true: lockstep.StatePanicked, false: lockstep.StateExited}[both || i == 1]; s.State != w {
						t.Errorf("try %d: side %d state %q, want %s", try, i, s.State, w)
					}
				}
			}
		})
	}
}
