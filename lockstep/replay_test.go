package lockstep

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
	sc := replayScenario(t, "deep-1e7")
	res, err := Run(context.Background(), sc, Options{})
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
	// deep-1e7: 526315 iterations of 19 instructions between deep_start
	// and the cpuid.
	if d.Step < 9_900_000 || d.Step > 10_100_000 {
		t.Errorf("localised %d instructions after deep_start, want about 10^7", d.Step)
	}
	if loc.Depth < 10_000_000 || loc.Probes == 0 || loc.Passes == 0 || loc.Record <= 0 || loc.Replay <= 0 {
		t.Errorf("replay figures %+v", *loc)
	}
	if loc.ICount[0] == 0 || loc.ICount[1] == 0 {
		t.Errorf("no instruction counts in %+v", *loc)
	}
}
