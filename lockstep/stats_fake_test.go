package lockstep

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
)

// fakeExits adds accelerator counters on arriving at pc, as KVM's
// query-stats would count them.
func fakeExits(pc uint64, stats map[string]uint64) func([]fake.State) {
	return fakeAt(pc, func(s *fake.State) { s.Stats = stats })
}

// TestFakeStats checks compare.stats on fake guests: counter deltas
// between consecutive sync points, the tolerance, and guests with no
// counters (TCG) reported as not compared, never as a pass.
func TestFakeStats(t *testing.T) {
	const body = `compare:
  registers: [rax]
  stats: {tolerance: {ratio: 2, absolute: 100}}
sync:
  - break: "0x1008"
  - break: "0x1010"
expect: identical
`
	// Both sides exit the same way 5000 times before the first point;
	// between the points a takes 10 I/O exits and b 20000.
	boot := map[string]uint64{"vcpu.exits": 5000, "vcpu.io_exits": 5000, "vm.remote_tlb_flush": 3}
	quiet := fakeProg(64, fake.Exit, 0, fakeExits(0x1002, boot), fakeExits(0x100c, map[string]uint64{"vcpu.io_exits": 10, "vcpu.exits": 10}))
	noisy := fakeProg(64, fake.Exit, 0, fakeExits(0x1002, boot), fakeExits(0x100c, map[string]uint64{"vcpu.io_exits": 20000, "vcpu.exits": 20000}))
	near := fakeProg(64, fake.Exit, 0, fakeExits(0x1002, boot), fakeExits(0x100c, map[string]uint64{"vcpu.io_exits": 90, "vcpu.exits": 90}))
	runCases(t, []fakeCase{
		{
			name: "many more io exits on b",
			body: body, a: quiet, b: noisy,
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncMatch, SyncDiverge}, kinds: []compare.Kind{compare.KindStats},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				d := fakeByKind(res, compare.KindStats)
				if len(d) != 1 || d[0].Sync != 1 || d[0].Stats == nil {
					t.Fatalf("stats divergences %+v, want one at sync point 2", d)
				}
				rows := d[0].Stats.Differing()
				if len(rows) != 2 || rows[0].Name != "vcpu.exits" || rows[0].Delta != [2]uint64{10, 20000} ||
					rows[1].Name != "vcpu.io_exits" || rows[1].Delta != [2]uint64{10, 20000} {
					t.Errorf("differing rows %+v, want vcpu.exits and vcpu.io_exits 10 vs 20000", rows)
				}
				if s := d[0].Summary; !strings.Contains(s, "10 vs 20000 since sync 1") {
					t.Errorf("summary %q", s)
				}
				if st := res.Syncs[0].Stats; st == nil || st.Since != "boot" || st.Rows[0].Delta != [2]uint64{5000, 5000} {
					t.Errorf("sync 1 stats %+v, want deltas since boot", st)
				}
			},
		},
		{
			name: "within the absolute tolerance",
			body: body, a: quiet, b: near,
			outcome: OutcomeIdentical, passed: true,
			syncs: []SyncStatus{SyncMatch, SyncMatch},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				st := res.Syncs[1].Stats
				if st == nil || st.Since != "sync 1" || len(st.Rows) == 0 || st.Rows[0].Delta != [2]uint64{10, 90} {
					t.Errorf("sync 2 stats %+v, want the 10 vs 90 deltas shown, none differing", st)
				}
			},
		},
		{
			name: "no counters, as under tcg",
			body: body, a: fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0),
			outcome: OutcomeIncomplete, passed: false,
			syncs: []SyncStatus{SyncIncomplete, SyncIncomplete},
			notes: []string{"stats not compared"},
		},
	})
}
