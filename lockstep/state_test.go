package lockstep_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// TestStateAtMatchingPoint checks that a sync point where the guests
// agree still records where each was: pc with source, the compared
// registers and a backtrace, on both sides.
func TestStateAtMatchingPoint(t *testing.T) {
	sc := load(t, "demo-self.yaml")
	res := runScenario(t, sc)
	k := syncIndex(t, sc, "checksum")
	sr := res.Syncs[k]
	if sr.Status != lockstep.SyncMatch {
		t.Fatalf("sync %d: status %s, want match", k+1, sr.Status)
	}
	for i, st := range sr.State {
		if st.PC.Addr == 0 || st.PC.Symbol != "checksum" || !st.PC.SameCode(sr.PC[i]) {
			t.Errorf("side %d: pc %+v, want checksum as in the sync's pc %+v", i, st.PC, sr.PC[i])
		}
		if st.PC.File == "" || st.PC.Line == 0 {
			t.Errorf("side %d: pc %s has no source line", i, st.PC)
		}
		var names []string
		for _, r := range st.Registers {
			names = append(names, r.Name)
			if !strings.HasPrefix(r.Value, "0x") {
				t.Errorf("side %d: register %s = %q, want a hex value", i, r.Name, r.Value)
			}
		}
		if got := strings.Join(names, ","); got != "rdi,rsi,rax" {
			t.Errorf("side %d: registers %s, want rdi,rsi,rax in compare order", i, got)
		}
		if n := len(st.Backtrace); n < 2 || st.Backtrace[n-1].Symbol != "checksum" || st.Backtrace[0].Symbol == "" {
			t.Errorf("side %d: backtrace %+v, want outermost first down to checksum", i, st.Backtrace)
		}
	}
	if a, b := sr.State[0].Registers, sr.State[1].Registers; !slices.Equal(a, b) {
		t.Errorf("registers differ at a matching point: a %v, b %v", a, b)
	}
	// The first point compares the general registers; every reached point
	// has a state, even one that does not compare call paths.
	for _, s := range res.Syncs {
		for i, st := range s.State {
			if len(st.Backtrace) == 0 || st.PC.Addr == 0 {
				t.Errorf("sync %d side %d: state %+v, want pc and backtrace", s.Index+1, i, st)
			}
		}
	}
	if n := len(res.Syncs[0].State[0].Registers); n < 16 {
		t.Errorf("sync 1: %d registers in the state, want the general group", n)
	}
}
