package lockstep_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// load builds the guests if needed and loads a scenario from
// testdata/scenarios.
func load(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "demo-good")
	sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func runScenario(t *testing.T, sc *scenario.Scenario) *lockstep.Result {
	t.Helper()
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{})
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	noLeftovers(t)
	return res
}

// noLeftovers fails the test if any QEMU started by this process lives on.
func noLeftovers(t *testing.T) {
	t.Helper()
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}

func byKind(res *lockstep.Result, k compare.Kind) []compare.Divergence {
	var out []compare.Divergence
	for _, d := range res.Divergences {
		if d.Kind == k {
			out = append(out, d)
		}
	}
	return out
}

func syncIndex(t *testing.T, sc *scenario.Scenario, brk string) int {
	t.Helper()
	for i, sp := range sc.Sync {
		if sp.Break == brk {
			return i
		}
	}
	t.Fatalf("scenario %s has no sync point %q", sc.Name, brk)
	return -1
}

// TestDemoFindsPlantedDivergences is the acceptance test of the demo: the
// three planted differences between demo-good and demo-bad, each at the
// right sync point and symbol, and nothing that is only a layout shift.
func TestDemoFindsPlantedDivergences(t *testing.T) {
	sc := load(t, "demo.yaml")
	res := runScenario(t, sc)
	if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
		t.Fatalf("outcome %s passed=%v, want diverged and passed", res.Outcome, res.Passed)
	}
	if res.Mode != "different-builds" {
		t.Errorf("mode %q, want different-builds", res.Mode)
	}

	regs := byKind(res, compare.KindRegister)
	if len(regs) != 1 {
		t.Fatalf("register divergences: %+v, want exactly rsi at marker", regs)
	}
	r := regs[0]
	if r.Sync != syncIndex(t, sc, "marker") || r.Register.Name != "rsi" ||
		r.Register.Values != [2]string{"0x0000000000005a5a", "0x0000000000005a5b"} {
		t.Errorf("register divergence %+v %+v, want rsi 0x5a5a vs 0x5a5b at marker", r, r.Register)
	}
	for i := range 2 {
		if r.PC[i].Symbol != "marker" || r.PC[i].Offset != 0 {
			t.Errorf("side %d pc %s, want marker", i, r.PC[i])
		}
	}

	mems := byKind(res, compare.KindMemory)
	if len(mems) != 1 {
		t.Fatalf("memory divergences: %+v, want exactly results[5]", mems)
	}
	m := mems[0]
	if m.Sync != syncIndex(t, sc, "report") || m.Memory.Name != "results" || m.Memory.DiffBytes != 1 ||
		m.Memory.FirstOffset != 5*8 {
		t.Errorf("memory divergence %+v, want 1 byte of results at +0x28 at report", m.Memory)
	}
	var row *compare.HexRow
	for i := range m.Memory.Rows {
		if m.Memory.Rows[i].Offset == 0x20 {
			row = &m.Memory.Rows[i]
		}
	}
	if row == nil || !strings.HasPrefix(row.A[16:], "11") || !strings.HasPrefix(row.B[16:], "12") {
		t.Errorf("row +0x20 = %+v, want byte +0x28 0x11 vs 0x12", row)
	}

	paths := byKind(res, compare.KindCallPath)
	sources := map[string]bool{}
	for _, p := range paths {
		sources[p.CallPath.Source] = true
		if p.Sync != syncIndex(t, sc, "leaf") {
			t.Errorf("call-path divergence at sync %d, want leaf", p.Sync)
		}
		if !strings.Contains(p.CallPath.Unified, "-path_b") || !strings.Contains(p.CallPath.Unified, "+path_c") {
			t.Errorf("call path diff:\n%s\nwant -path_b +path_c", p.CallPath.Unified)
		}
	}
	if !sources["backtrace"] || !sources["trace"] {
		t.Errorf("call-path divergences from %v, want backtrace and trace", sources)
	}
	// Localisation between builds compares function entries: the call
	// path change at leaf and the argument change at marker.
	loc := map[int]string{}
	for _, d := range byKind(res, compare.KindInstruction) {
		switch d.Instruction.Granularity {
		case "function":
			loc[d.Sync] = d.Summary
		case "write":
			// The memory divergence at report, localised to its store.
			if d.Sync != syncIndex(t, sc, "report") ||
				!strings.HasPrefix(d.Summary, "write #1 to results+0x28 in kmain: 0x1111111111111111 vs 0x1111111111111112 (") {
				t.Errorf("write localisation %q at sync %d, want results+0x28 stored in kmain at report", d.Summary, d.Sync)
			}
			// The store instruction itself, found by decoding kmain.
			for i := range 2 {
				if d.PC[i].Symbol != "kmain" || !strings.HasPrefix(d.Instruction.Disasm[i], "mov") ||
					!strings.Contains(d.Instruction.Disasm[i], "<results+0x28>") || d.Instruction.Bytes[i] == "" {
					t.Errorf("side %d store at %s: %q (bytes %q), want a mov to results+0x28 in kmain",
						i, d.PC[i], d.Instruction.Disasm[i], d.Instruction.Bytes[i])
				}
				// x86 stops after the store; the path ends at the store.
				if path := d.Instruction.CallPath[i]; len(path) == 0 || path[len(path)-1].Addr != d.PC[i].Addr {
					t.Errorf("side %d: call path %v does not end at the store %s", i, path, d.PC[i])
				}
			}
		default:
			t.Errorf("localisation between builds by %s, want function or write", d.Instruction.Granularity)
		}
	}
	if !strings.HasPrefix(loc[syncIndex(t, sc, "leaf")], "call #2: path_b vs path_c (") {
		t.Errorf("localisation at leaf: %q, want call #2: path_b vs path_c", loc[syncIndex(t, sc, "leaf")])
	}
	if !strings.Contains(loc[syncIndex(t, sc, "marker")], "call #1 of marker: rsi 0x5a5a vs 0x5a5b") {
		t.Errorf("localisation at marker: %q, want call #1 of marker: rsi", loc[syncIndex(t, sc, "marker")])
	}
	if n := len(res.Divergences); n != 7 {
		t.Errorf("%d divergences, want 7 (rsi, results, backtrace, trace, 2 calls and 1 write localised): %+v", n, res.Divergences)
	}
}

// TestLocaliseFirstInstruction checks that localisation between CPU
// models finds the cpuid about 1,000 instructions after the last
// matching sync point, by instruction.
func TestLocaliseFirstInstruction(t *testing.T) {
	sc := load(t, "deep.yaml")
	res := runScenario(t, sc)
	ins := byKind(res, compare.KindInstruction)
	if len(ins) != 1 {
		t.Fatalf("instruction divergences %+v, want 1", ins)
	}
	d := ins[0]
	id := d.Instruction
	if id.Granularity != "instruction" || id.Bytes != [2]string{"0fa2", "0fa2"} ||
		!strings.Contains(id.Disasm[0], "cpuid") || d.PC[0].Symbol != "kmain" {
		t.Errorf("localised to %v %+v, want cpuid in kmain", d.PC, id)
	}
	// deep-1e3 executes about 1,000 instructions from deep_start to the cpuid.
	if d.Step < 900 || d.Step > 1100 {
		t.Errorf("localised at step %d, want about 1000", d.Step)
	}
	regs := map[string]bool{}
	for _, r := range id.Registers {
		regs[r.Name] = true
	}
	if !regs["rcx"] {
		t.Errorf("registers after the cpuid %v, want rcx (CPUID.1:ECX)", regs)
	}
}

// TestLocaliseFirstCallBetweenBuilds checks that between two builds the
// planted constant is found as the first call whose argument differs,
// thousands of instructions before the sync point that notices it.
func TestLocaliseFirstCallBetweenBuilds(t *testing.T) {
	res := runScenario(t, load(t, "deep-builds.yaml"))
	var ins, writes []compare.Divergence
	for _, d := range byKind(res, compare.KindInstruction) {
		if d.Instruction.Granularity == "write" {
			writes = append(writes, d)
		} else {
			ins = append(ins, d)
		}
	}
	if len(ins) != 1 || len(writes) != 1 {
		t.Fatalf("localised by call %+v and by write %+v, want one each", ins, writes)
	}
	// The planted constant reaches deep_state in the same iteration: the
	// 10th store to it is the first that differs.
	if !strings.Contains(writes[0].Summary, "write #10 to deep_state+0x0 in kmain") {
		t.Errorf("write localisation %q, want the 10th store to deep_state", writes[0].Summary)
	}
	if !strings.HasPrefix(ins[0].Summary, "call #10 of deep_mix: rdi 0xf909f7bdd3cae476 vs 0xf909f7bdd3cae478 (") {
		t.Errorf("localised %q, want call #10 of deep_mix with rdi", ins[0].Summary)
	}
	// The call path at that call: kmain calling deep_mix, on both sides.
	for i, cp := range ins[0].Instruction.CallPath {
		if n := len(cp); n < 2 || cp[n-1].Symbol != "deep_mix" || cp[n-2].Symbol != "kmain" {
			t.Errorf("side %d call path %v, want ... > kmain+off > deep_mix", i, cp)
		}
	}
}

func TestDemoAgainstItselfIsIdentical(t *testing.T) {
	res := runScenario(t, load(t, "demo-self.yaml"))
	if res.Outcome != lockstep.OutcomeIdentical || !res.Passed || len(res.Divergences) != 0 {
		t.Fatalf("outcome %s, divergences %+v, want identical", res.Outcome, res.Divergences)
	}
	for _, s := range res.Syncs {
		if s.Status != "match" || !s.Reached[0] || !s.Reached[1] {
			t.Errorf("sync %d: %+v, want reached and matched", s.Index, s)
		}
	}
	for i, s := range res.Sides {
		if s.State != "exited" || s.ExitCode == nil || *s.ExitCode != 1 {
			t.Errorf("side %d ended %s %v, want exited with status 1", i, s.State, s.ExitCode)
		}
	}
}

// TestCPUModelsFindCPUID checks that -cpu qemu64 against -cpu max shows
// CPUID leaf 1 ECX at the sync point after that leaf.
func TestCPUModelsFindCPUID(t *testing.T) {
	sc := load(t, "cpu-models.yaml")
	res := runScenario(t, sc)
	if !res.Passed {
		t.Fatalf("outcome %s, want diverged", res.Outcome)
	}
	found := false
	for _, d := range byKind(res, compare.KindRegister) {
		if d.Sync == 0 && d.Register.Name == "rcx" && d.Register.Values[0] == "0x0000000080002001" {
			found = true
		}
	}
	if !found {
		t.Errorf("no rcx (CPUID.1:ECX) divergence at cpuid_result hit 2: %+v", res.Divergences)
	}
	if len(byKind(res, compare.KindMemory)) == 0 {
		t.Errorf("probe_cpuid memory not reported as different")
	}
}

// TestTCGAgainstKVM runs cpu-probe under TCG and KVM: CPUID differs. A
// nested host can run qemu64 under KVM and refuse max (its MSRs), so each
// CPU model is probed and skipped on its own.
func TestTCGAgainstKVM(t *testing.T) {
	for _, cpu := range []string{"max", "qemu64"} {
		t.Run(cpu, func(t *testing.T) {
			qemutest.RequireKVM(t, cpu)
			sc := load(t, "tcg-kvm.yaml")
			for i := range sc.Guests {
				sc.Guests[i].CPU = cpu
			}
			res := runScenario(t, sc)
			if !res.Passed || len(byKind(res, compare.KindRegister)) == 0 {
				t.Fatalf("outcome %s, divergences %+v: want CPUID register differences", res.Outcome, res.Divergences)
			}
		})
	}
}

// TestHangIsArrival checks that a guest that hangs before a sync point
// gives an arrival divergence naming where it is, within the timeout, and
// leaves no QEMU behind.
func TestHangIsArrival(t *testing.T) {
	sc := load(t, "demo-hang.yaml")
	res := runScenario(t, sc)
	arr := byKind(res, compare.KindArrival)
	if len(arr) != 1 {
		t.Fatalf("arrival divergences %+v, want 1", res.Divergences)
	}
	a := arr[0]
	if a.Arrival.State != [2]string{"reached", "timeout"} || a.PC[1].Symbol != "hang_here" {
		t.Errorf("arrival %+v pc %v, want a reached, b timeout in hang_here", a.Arrival, a.PC)
	}
	if !strings.Contains(a.Arrival.Detail[1], "hang_here") {
		t.Errorf("detail %q does not name hang_here", a.Arrival.Detail[1])
	}
}

func TestEarlyExitIsArrival(t *testing.T) {
	res := runScenario(t, load(t, "demo-exit.yaml"))
	arr := byKind(res, compare.KindArrival)
	if len(arr) != 1 {
		t.Fatalf("divergences %+v, want one arrival", res.Divergences)
	}
	a := arr[0].Arrival
	if a.State[1] != "exited" || a.ExitCode[1] == nil || *a.ExitCode[1] != 7 {
		t.Errorf("arrival %+v, want b exited with status 7", a)
	}
}

// TestCancelLeavesNoQEMU cancels a run while a guest hangs.
func TestCancelLeavesNoQEMU(t *testing.T) {
	sc := load(t, "demo-hang.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(2 * time.Second)
		cancel()
	}()
	res, err := lockstep.Run(ctx, sc, lockstep.Options{})
	if err == nil {
		t.Fatalf("cancelled run returned no error: %+v", res)
	}
	if !errors.Is(err, lockstep.ErrInfrastructure) || res.Outcome != lockstep.OutcomeError {
		t.Errorf("err %v outcome %s, want an infrastructure error", err, res.Outcome)
	}
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(res.Error, "interrupted:") {
		t.Errorf("error %q, want it to say the run was interrupted", res.Error)
	}
	if s := res.Syncs[0]; s.Reached == [2]bool{true, true} && s.Status == lockstep.SyncSkipped {
		t.Errorf("sync point 1, reached by both, is %s", s.Status)
	}
	noLeftovers(t)
}

func TestMissingQEMU(t *testing.T) {
	sc := load(t, "demo-self.yaml")
	sc.Guests[1].QEMU = "qemu-system-x86_64-not-installed"
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{})
	if !errors.Is(err, qemu.ErrNotFound) || !errors.Is(err, lockstep.ErrInfrastructure) {
		t.Fatalf("err %v, want ErrNotFound as an infrastructure failure", err)
	}
	if res.Outcome != lockstep.OutcomeError || !strings.Contains(res.Error, "qemu-system-x86") {
		t.Errorf("result %s %q, want an error naming the package", res.Outcome, res.Error)
	}
	noLeftovers(t)
}

// TestStepWindow steps both CPU models from the first cpuid_result (leaf 0,
// which matches) and must stop at the cpuid of leaf 1, instruction by
// instruction, with both disassemblies: through the gdbstub for a window
// shorter than traceWindowMin, through the trace engine for a longer one.
// Both must give the same instruction and count.
func TestStepWindow(t *testing.T) {
	steps := map[string]int{}
	for _, tt := range []struct {
		name   string
		window int
		engine string
	}{
		{"gdbstub", 4999, "step window after sync point 1:"},
		{"trace", 20000, "(trace engine)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := load(t, "cpu-models.yaml")
			sc.Sync = sc.Sync[:1]
			sc.Sync[0].Hit = 1
			sc.Sync[0].Step = tt.window
			sc.Localize.Enabled = false
			res := runScenario(t, sc)
			ins := byKind(res, compare.KindInstruction)
			if len(ins) != 1 {
				t.Fatalf("instruction divergences %+v, want 1 (notes %v)", res.Divergences, res.Notes)
			}
			id := ins[0].Instruction
			if id.Granularity != "instruction" || !strings.Contains(id.Disasm[0], "cpuid") || !strings.Contains(id.Disasm[1], "cpuid") {
				t.Errorf("step window stopped at %v %+v, want the cpuid of leaf 1", ins[0].PC, id)
			}
			if !strings.Contains(ins[0].Summary, tt.engine) {
				t.Errorf("summary %q does not say %q", ins[0].Summary, tt.engine)
			}
			if ins[0].Step <= 0 || ins[0].Step >= tt.window || res.Syncs[0].Steps != ins[0].Step {
				t.Errorf("step %d, window steps %d", ins[0].Step, res.Syncs[0].Steps)
			}
			steps[tt.name] = ins[0].Step
		})
	}
	if steps["gdbstub"] != steps["trace"] {
		t.Errorf("gdbstub found step %d, trace step %d", steps["gdbstub"], steps["trace"])
	}
}

// TestBulkMemory compares a 1 MiB physical range, which goes through QMP
// pmemsave rather than 'm' packets, on one binary against itself.
func TestBulkMemory(t *testing.T) {
	sc := load(t, "demo-self.yaml")
	sc.Sync = sc.Sync[len(sc.Sync)-1:]
	sc.Sync[0].Compare.Memory = []scenario.MemoryRange{
		{Address: 0x100000, HasAddress: true, Length: 1 << 20, Space: scenario.SpacePhysical},
		{Symbol: "results"},
	}
	// Kept run directory: the dumps must be gone after each sync point.
	runDir := t.TempDir()
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{Keep: true, RunDir: runDir})
	if err != nil {
		t.Fatal(err)
	}
	noLeftovers(t)
	if res.Outcome != lockstep.OutcomeIdentical {
		t.Fatalf("outcome %s: %+v %v", res.Outcome, res.Divergences, res.Notes)
	}
	dumps, _ := filepath.Glob(filepath.Join(runDir, "lockstep-*", "*", "*-mem-*.bin"))
	more, _ := filepath.Glob(filepath.Join(runDir, "lockstep-*", "*-mem-*.bin"))
	if dumps = append(dumps, more...); len(dumps) > 0 {
		t.Errorf("memory dumps left in the kept run directory: %v", dumps)
	}
	// The same range on demo-good against demo-bad differs in code and data.
	sc2 := load(t, "demo.yaml")
	sc2.Sync = sc2.Sync[len(sc2.Sync)-1:]
	sc2.Sync[0].Compare.Memory = []scenario.MemoryRange{{Address: 0x100000, HasAddress: true, Length: 1 << 20, Space: scenario.SpacePhysical}}
	sc2.Trace.Functions = nil
	sc2.Localize.Enabled = false
	res = runScenario(t, sc2)
	mem := byKind(res, compare.KindMemory)
	if len(mem) != 1 || mem[0].Memory.Length != 1<<20 || mem[0].Memory.DiffBytes == 0 {
		t.Fatalf("memory divergences %+v, want the 1 MiB range to differ", mem)
	}
}

// TestSMPStepWindow runs a two-vCPU guest against itself with a step
// window: stepping must stay on the stopped vCPU (vCont;s:thread) and the
// run must come out identical. The window is on the last sync point: a
// window earlier would step past the next point's hits, which then is
// never reached (and the run is not identical but incomplete).
func TestSMPStepWindow(t *testing.T) {
	sc := load(t, "demo-self.yaml")
	for i := range sc.Guests {
		sc.Guests[i].SMP = 2
	}
	last := len(sc.Sync) - 1
	sc.Sync[last].Step = 300
	res := runScenario(t, sc)
	if res.Outcome != lockstep.OutcomeIdentical || res.Syncs[last].Steps != 300 {
		t.Fatalf("outcome %s, window steps %d, divergences %+v, syncs %+v, notes %q", res.Outcome, res.Syncs[last].Steps, res.Divergences, res.Syncs, res.Notes)
	}
}
