package lockstep

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
)

// TestFakeState: a sync point both sides reached records each side's pc,
// compared registers (in compare order) and backtrace, when they match
// and when they differ; a point not reached by both has no state, and
// the JSON leaves it out.
func TestFakeState(t *testing.T) {
	t.Parallel()
	body := "compare: {registers: [rbx, rax]}\nsync:\n  - break: \"0x1004\"\n  - break: \"0x1008\"\n  - break: \"0x1010\"\nexpect: identical\n"
	runCases(t, []fakeCase{{
		name:    "match, differ, unreached",
		body:    body,
		a:       fakeProg(64, fake.Exit, 0, fakeReg(0x1006, "rax", 0x2a)),
		b:       fakeProg(12, fake.Exit, 0, fakeReg(0x1006, "rax", 0x2b)),
		outcome: OutcomeDiverged,
		syncs:   []SyncStatus{SyncMatch, SyncDiverge, SyncUnreached},
		kinds:   []compare.Kind{compare.KindRegister, compare.KindInstruction, compare.KindArrival},
		states:  [2]SideState{"", StateExited},
		check: func(t *testing.T, res *Result, _ *fake.Launcher) {
			want := [2][2]string{{"0x0000000000000000", "0x0000000000000000"}, {"0x000000000000002a", "0x000000000000002b"}}
			for k, addr := range []uint64{0x1004, 0x1008} {
				for i, st := range res.Syncs[k].State {
					if st.PC.Addr != addr || len(st.Backtrace) == 0 || st.Backtrace[len(st.Backtrace)-1].Addr != addr {
						t.Errorf("sync %d side %d: pc %s, backtrace %v; want both at %#x", k+1, i, st.PC, st.Backtrace, addr)
					}
					names := make([]string, len(st.Registers))
					for j, r := range st.Registers {
						names[j] = r.Name
					}
					if !slices.Equal(names, []string{"rbx", "rax"}) {
						t.Errorf("sync %d side %d: registers %v, want rbx, rax in compare order", k+1, i, names)
					} else if got := st.Registers[1].Value; got != want[k][i] {
						t.Errorf("sync %d side %d: rax %s, want %s", k+1, i, got, want[k][i])
					}
				}
			}
			if st := res.Syncs[2].State; !st[0].PC.IsZero() || !st[1].PC.IsZero() {
				t.Errorf("unreached sync 3 has a state: %+v", st)
			}
			b, err := json.Marshal(res.Syncs[2])
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), `"state"`) {
				t.Errorf("unreached sync 3 marshals a state: %s", b)
			}
		},
	}})
}
