package lockstep

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// replayScenario loads testdata/scenarios/deep-replay.yaml with both sides
// running the named deep guest.
func replayScenario(t testing.TB, guest string) *scenario.Scenario {
	t.Helper()
	qemutest.Require(t, "x86_64", "tcg")
	elf := qemutest.Guest(t, guest)
	sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", "deep-replay.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.Guests {
		sc.Guests[i].Kernel, sc.Guests[i].Symbols = elf, elf
	}
	return sc
}

// TestReplayLocalize localises the cpuid of deep-1e7, about 10^7
// instructions after deep_start, by record/replay bisection: the exact
// instruction, its function and disassembly, and both sides' values.
func TestReplayLocalize(t *testing.T) {
	checkReplay(t, "deep-1e7", 10_000_000)
}

// TestReplayLocalizeDeep is TestReplayLocalize 10^9 instructions deep
// (deep-1e9). It takes longer than the normal suite allows: opt in with
// LOCKSTEP_REPLAY_DEEP=1 (make e2e-replay).
func TestReplayLocalizeDeep(t *testing.T) {
	if os.Getenv("LOCKSTEP_REPLAY_DEEP") == "" {
		t.Skip("10^9 instructions deep: set LOCKSTEP_REPLAY_DEEP=1 (make e2e-replay)")
	}
	checkReplay(t, "deep-1e9", 1_000_000_000)
}

// checkReplay runs deep-replay.yaml on guest and checks that replay
// bisection found the cpuid about depth instructions after deep_start.
func checkReplay(t *testing.T, guest string, depth int) {
	sc := replayScenario(t, guest)
	sc.Timeout = 30 * time.Minute
	t0 := time.Now()
	res, err := Run(context.Background(), sc, Options{Logger: testLogger(t)})
	t.Logf("run took %s", time.Since(t0).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("run: %v (notes %q)", err, res.Notes)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
	if res.Outcome != OutcomeDiverged {
		t.Fatalf("outcome %s, notes %q", res.Outcome, res.Notes)
	}
	d := firstInstruction(res)
	if d == nil {
		t.Fatalf("no instruction divergence; notes %q", res.Notes)
	}
	loc := res.Syncs[1].Localization
	if loc == nil || loc.Method != scenario.MethodReplay {
		t.Fatalf("localisation %+v, want method replay (notes %q)", loc, res.Notes)
	}
	t.Logf("localised: %s; %+v", d.Summary, *loc)
	id := d.Instruction
	if id == nil {
		t.Fatalf("no instruction detail in %+v", d)
	}
	if d.PC[0].Symbol != "kmain" || d.PC[1].Symbol != "kmain" {
		t.Errorf("divergent instruction in %q / %q, want kmain", d.PC[0].Symbol, d.PC[1].Symbol)
	}
	for i := range id.Disasm {
		if !strings.Contains(id.Disasm[i], "cpuid") {
			t.Errorf("side %d disassembly %q, want the cpuid", i, id.Disasm[i])
		}
	}
	differs := map[string]bool{}
	for _, r := range id.Registers {
		if r.Values[0] == r.Values[1] {
			t.Errorf("register %s listed as differing with equal values %s", r.Name, r.Values[0])
		}
		differs[r.Name] = true
	}
	if !differs["rcx"] && !differs["rdx"] {
		t.Errorf("differing registers %v, want rcx or rdx (CPUID leaf 1 features)", id.Registers)
	}
	// deep-1eN: N/19 iterations of 19 instructions between deep_start
	// and the cpuid.
	if d.Step < depth*99/100 || d.Step > depth*101/100 {
		t.Errorf("localised %d instructions after deep_start, want about %d", d.Step, depth)
	}
	if loc.Depth < uint64(depth) || loc.Probes == 0 || loc.Passes == 0 || loc.Record <= 0 || loc.Replay <= 0 {
		t.Errorf("replay figures %+v", *loc)
	}
	if loc.ICount[0] == 0 || loc.ICount[1] == 0 {
		t.Errorf("no instruction counts in %+v", *loc)
	}
}

// TestReplayCorrupt truncates side a's recording before the bisection
// replays it: the replay must not give an answer from it. The report says
// so, and localisation falls back to the trace engine, which still finds
// the cpuid.
func TestReplayCorrupt(t *testing.T) {
	sc := replayScenario(t, "deep-1e3")
	truncated := false
	opts := Options{Logger: testLogger(t), afterRecord: func(files [2]string) {
		fi, err := os.Stat(files[0])
		if err != nil {
			t.Errorf("recording: %v", err)
			return
		}
		if err := os.Truncate(files[0], fi.Size()/2); err != nil {
			t.Errorf("truncate: %v", err)
			return
		}
		truncated = true
	}}
	res, err := Run(context.Background(), sc, opts)
	if err != nil {
		t.Fatalf("run: %v (notes %q)", err, res.Notes)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
	if !truncated {
		t.Fatal("the recording was never handed to the test")
	}
	loc := res.Syncs[1].Localization
	if loc == nil || loc.Fallback == "" || loc.Method == scenario.MethodReplay {
		t.Fatalf("localisation %+v, want a fallback from replay (notes %q)", loc, res.Notes)
	}
	t.Logf("fallback: %s; method %s; notes %q", loc.Fallback, loc.Method, res.Notes)
	noted := false
	for _, n := range res.Notes {
		if strings.Contains(n, "replay bisection gave no answer") {
			noted = true
		}
	}
	if !noted {
		t.Errorf("no note of the failed replay in %q", res.Notes)
	}
	d := firstInstruction(res)
	if d == nil || d.Instruction == nil || !strings.Contains(d.Instruction.Disasm[0], "cpuid") {
		t.Fatalf("fallback localised %+v, want the cpuid (notes %q)", d, res.Notes)
	}
}

// testLogger logs the run through t, with times, in -v runs.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

// TestReplayAuto: with determinism.record and localize.method auto, a
// recording measures the depth; 10^3 instructions is below what replay
// pays off for, so the trace engine localises, and the report says why.
func TestReplayAuto(t *testing.T) {
	sc := replayScenario(t, "deep-1e3")
	sc.Localize.Method = scenario.MethodAuto
	res, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatalf("run: %v (notes %q)", err, res.Notes)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
	loc := res.Syncs[1].Localization
	if loc == nil || loc.Method != scenario.MethodTrace || !strings.Contains(loc.Why, "the trace engine is faster") || loc.Depth < 1000 {
		t.Fatalf("localisation %+v, want the trace engine chosen from the measured depth", loc)
	}
	d := firstInstruction(res)
	if d == nil || d.Instruction == nil || !strings.Contains(d.Instruction.Disasm[0], "cpuid") {
		t.Fatalf("localised %+v, want the cpuid (notes %q)", d, res.Notes)
	}
}

// TestReplayMemoryProbe localises deep-stash's cpuid, whose ECX is
// stored to deep_stash and cleared two instructions later, so the
// registers agree again until deep_stash is folded into deep_state about
// 10^5 instructions on. With deep_stash among sync point 2's compared
// memory, the replay probes compare it too and the bisection finds the
// cpuid; without it, they see registers only and name the later fold.
func TestReplayMemoryProbe(t *testing.T) {
	for _, withMem := range []bool{true, false} {
		t.Run(map[bool]string{true: "memory", false: "registers"}[withMem], func(t *testing.T) {
			sc := replayScenario(t, "deep-stash")
			if withMem {
				sc.Sync[1].Compare.Memory = []scenario.MemoryRange{{Symbol: "deep_stash", Length: 4, Space: scenario.SpaceVirtual}}
			} else {
				sc.Sync[1].Compare.Memory = nil
			}
			res, err := Run(context.Background(), sc, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("run: %v (notes %q)", err, res.Notes)
			}
			if live := qemu.Live(); len(live) > 0 {
				t.Errorf("QEMU processes left running: %v", live)
			}
			loc := res.Syncs[1].Localization
			if loc == nil || loc.Method != scenario.MethodReplay {
				t.Fatalf("localisation %+v, want method replay (notes %q)", loc, res.Notes)
			}
			d := firstInstruction(res)
			if d == nil || d.Instruction == nil {
				t.Fatalf("no instruction divergence; notes %q", res.Notes)
			}
			t.Logf("localised: %s at step %d; %+v", d.Summary, d.Step, *loc)
			for i, dis := range d.Instruction.Disasm {
				if got := strings.Contains(dis, "cpuid"); got != withMem {
					t.Errorf("side %d: localised %q; want the cpuid: %v", i, dis, withMem)
				}
			}
			// deep-stash: 10^5/19 iterations of 19 instructions, the
			// cpuid, as many iterations again (shorter ones), then the
			// load of deep_stash.
			const depth = 100_000
			if withMem && (d.Step < depth*99/100 || d.Step > depth*101/100) {
				t.Errorf("localised %d instructions after deep_start, want about %d", d.Step, depth)
			}
			if !withMem && (d.Step < depth*3/2 || !strings.Contains(d.Instruction.Disasm[0], "deep_stash")) {
				t.Errorf("registers only: localised %q %d instructions after deep_start, want the load of deep_stash after the second loop", d.Instruction.Disasm[0], d.Step)
			}
		})
	}
}
