package lockstep_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestS390xGuestPanicIsDivergence runs an s390x guest that panics (a
// disabled-wait PSW: QEMU reports GUEST_PANICKED and exits with status 0)
// against one that ends normally (the quiesce PSW, also status 0), once
// with the panic before the last sync point and once after it. Both must
// diverge, every time, with the panicking side named "panicked": before
// issue 11's review the panic after the last sync point passed as
// IDENTICAL (both "exited with status 0"), and the one before it came out
// as an arrival, an unexplained stop (signal 143) or an infrastructure
// failure, depending on timing. Each case runs three times for the race.
func TestS390xGuestPanicIsDivergence(t *testing.T) {
	qemutest.CrossGuest(t, "s390x", "demo-exit")
	c := crossArch{arch: "s390x"}
	for _, tc := range []struct {
		name      string
		lastSync  bool // keep only the first sync point: the panic comes after it
		wantKind  compare.Kind
		wantState string
	}{
		{"before-last-sync", false, compare.KindArrival, "panicked (QEMU exited with status 0)"},
		{"after-last-sync", true, compare.KindExit, "b panicked (QEMU exited with status 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for try := range 3 {
				sc := loadCross(t, c, "demo-exit")
				if tc.lastSync {
					sc.Sync = sc.Sync[:1]
				}
				res := runScenario(t, sc)
				if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
					t.Fatalf("try %d: outcome %s (error %q), want diverged", try, res.Outcome, res.Error)
				}
				ds := byKind(res, tc.wantKind)
				if len(ds) != 1 || !strings.Contains(ds[0].Summary, tc.wantState) {
					t.Fatalf("try %d: %s divergences %+v, want one saying %q", try, tc.wantKind, ds, tc.wantState)
				}
				if tc.wantKind == compare.KindExit && ds[0].Exit.State != [2]string{"exited", "panicked"} {
					t.Errorf("try %d: exit states %v, want exited, panicked", try, ds[0].Exit.State)
				}
				if res.Sides[1].State != lockstep.StatePanicked {
					t.Errorf("try %d: side b state %q, want panicked", try, res.Sides[1].State)
				}
				if tc.lastSync && res.Sides[0].State != lockstep.StateExited {
					t.Errorf("try %d: side a state %q, want exited", try, res.Sides[0].State)
				}
			}
		})
	}
}
