package lockstep_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// crossArch is what the aarch64, riscv64 and s390x guests (testdata/guests/
// <arch>/, scenarios testdata/scenarios/<arch>-*.yaml) look like on one
// architecture.
type crossArch struct {
	arch string
	// arg0, arg1 are the first two integer argument registers.
	arg0, arg1 string
	// bigEndian: the differing byte of a word is its last.
	bigEndian bool
	// store is the mnemonic of the store of a 64-bit word the compiler
	// emits for results[5] = ... and for store_word.
	store []string
	// feature is the mnemonic of the instruction localised between two
	// CPU models in deep-1e3 (on s390x the load right after STIDP, which
	// writes memory: the first instruction whose registers differ).
	feature string
	// fn is the function cpu-probe adds with on each model.
	fn [2]string
}

var crossArches = []crossArch{
	{arch: "aarch64", arg0: "x0", arg1: "x1", store: []string{"str"}, feature: "mrs",
		fn: [2]string{"probe_add_llsc", "probe_add_lse"}},
	{arch: "riscv64", arg0: "a0", arg1: "a1", store: []string{"sd"}, feature: "csrr",
		fn: [2]string{"probe_sum_rvc", "probe_sum_plain"}},
	{arch: "s390x", arg0: "r2", arg1: "r3", bigEndian: true, store: []string{"stg", "stgrl"}, feature: "lg",
		fn: [2]string{"probe_sum_agh", "probe_sum_ag"}},
}

// loadCross loads testdata/scenarios/<arch>-<name>.yaml, building the
// arch's guests if needed; it skips without qemu-system-<arch> or the
// cross compiler.
func loadCross(t *testing.T, c crossArch, name string) *scenario.Scenario {
	t.Helper()
	qemutest.CrossGuest(t, c.arch, "demo-good")
	sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", c.arch+"-"+name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestCrossDemoFindsPlantedDivergences is TestDemoFindsPlantedDivergences
// on aarch64, riscv64 and s390x: the three planted differences of demo.c
// found at the right sync points, each localised between the builds (the
// call and the argument by function entry, the store by write watchpoint
// with its disassembly), and nothing from the layout shift.
func TestCrossDemoFindsPlantedDivergences(t *testing.T) {
	for _, c := range crossArches {
		t.Run(c.arch, func(t *testing.T) {
			sc := loadCross(t, c, "demo")
			res := runScenario(t, sc)
			if res.Outcome != lockstep.OutcomeDiverged || !res.Passed || res.Mode != "different-builds" {
				t.Fatalf("outcome %s passed=%v mode %s, want diverged, passed, different-builds", res.Outcome, res.Passed, res.Mode)
			}
			regs := byKind(res, compare.KindRegister)
			if len(regs) != 1 || regs[0].Sync != syncIndex(t, sc, "marker") || regs[0].Register.Name != c.arg1 ||
				regs[0].Register.Values != [2]string{"0x0000000000005a5a", "0x0000000000005a5b"} {
				t.Errorf("register divergences %+v, want exactly %s 0x5a5a vs 0x5a5b at marker", regs, c.arg1)
			}
			mems := byKind(res, compare.KindMemory)
			first := 5 * 8
			if c.bigEndian {
				first += 7
			}
			if len(mems) != 1 || mems[0].Sync != syncIndex(t, sc, "report") || mems[0].Memory.Name != "results" ||
				mems[0].Memory.DiffBytes != 1 || mems[0].Memory.FirstOffset != first {
				t.Errorf("memory divergences %+v, want 1 byte of results at %#x at report", mems, first)
			}
			sources := map[string]bool{}
			for _, p := range byKind(res, compare.KindCallPath) {
				sources[p.CallPath.Source] = true
				if p.Sync != syncIndex(t, sc, "leaf") || !strings.Contains(p.CallPath.Unified, "-path_b") ||
					!strings.Contains(p.CallPath.Unified, "+path_c") {
					t.Errorf("call-path divergence at sync %d:\n%s\nwant -path_b +path_c at leaf", p.Sync, p.CallPath.Unified)
				}
			}
			if !sources["backtrace"] || !sources["trace"] {
				t.Errorf("call-path divergences from %v, want backtrace and trace", sources)
			}
			loc := map[int]string{}
			writes := 0
			for _, d := range byKind(res, compare.KindInstruction) {
				switch d.Instruction.Granularity {
				case "function":
					loc[d.Sync] = d.Summary
				case "write":
					writes++
					if d.Sync != syncIndex(t, sc, "report") ||
						!strings.HasPrefix(d.Summary, "write #1 to results+0x28 in kmain: 0x1111111111111111 vs 0x1111111111111112") {
						t.Errorf("write localisation %q at sync %d, want write #1 to results+0x28 in kmain", d.Summary, d.Sync)
					}
					for i := range 2 {
						if d.PC[i].Symbol != "kmain" || !isStore(c, d.Instruction.Disasm[i]) || d.Instruction.Bytes[i] == "" {
							t.Errorf("side %d store at %s: %q (bytes %q), want a %v in kmain", i, d.PC[i], d.Instruction.Disasm[i], d.Instruction.Bytes[i], c.store)
						}
						// The call path ends at the store, not after it
						// (s390x stops after the store).
						if path := d.Instruction.CallPath[i]; len(path) == 0 || path[len(path)-1].Addr != d.PC[i].Addr {
							t.Errorf("side %d: call path %v does not end at the store %s", i, path, d.PC[i])
						}
					}
				default:
					t.Errorf("localisation between builds by %s, want function or write", d.Instruction.Granularity)
				}
			}
			if writes != 1 {
				t.Errorf("%d write localisations, want 1 (notes %v)", writes, res.Notes)
			}
			if s := loc[syncIndex(t, sc, "leaf")]; !strings.HasPrefix(s, "call #2: path_b vs path_c ") {
				t.Errorf("localisation at leaf: %q, want call #2: path_b vs path_c", s)
			}
			if s, want := loc[syncIndex(t, sc, "marker")], fmt.Sprintf("call #1 of marker: %s 0x5a5a vs 0x5a5b", c.arg1); !strings.Contains(s, want) {
				t.Errorf("localisation at marker: %q, want %q", s, want)
			}
		})
	}
}

// isStore reports whether the disassembly text starts with one of c's store
// mnemonics.
func isStore(c crossArch, text string) bool {
	f := strings.Fields(text)
	if len(f) == 0 {
		return false
	}
	for _, s := range c.store {
		if f[0] == s {
			return true
		}
	}
	return false
}

// TestCrossStoresCountedOnce checks write-watchpoint localisation on
// hundreds of stores to one word where QEMU reports the hit before the
// store executes (aarch64, riscv64): each store must be stepped over and
// counted once. Store #300 is the first that differs. (stores_out[1], the
// sum, is written once, in kmain.) s390x stops after the store, like x86
// (TestStores*); its demo test covers it.
func TestCrossStoresCountedOnce(t *testing.T) {
	for _, c := range crossArches[:2] {
		t.Run(c.arch, func(t *testing.T) {
			res := runScenario(t, loadCross(t, c, "stores"))
			var got []compare.Divergence
			for _, d := range byKind(res, compare.KindInstruction) {
				if d.Instruction.Granularity == "write" && strings.Contains(d.Summary, "stores_out+0x0 ") {
					got = append(got, d)
				}
			}
			if len(got) != 1 {
				t.Fatalf("write localisations of stores_out+0x0 %+v, want 1 (divergences %+v, notes %v)", got, res.Divergences, res.Notes)
			}
			d := got[0]
			if !strings.HasPrefix(d.Summary, "write #300 to stores_out+0x0 in store_word: 0x12c0 vs 0x12c1") {
				t.Errorf("write localisation %q, want write #300 in store_word, 0x12c0 vs 0x12c1", d.Summary)
			}
			for i := range 2 {
				if d.PC[i].Symbol != "store_word" || !isStore(c, d.Instruction.Disasm[i]) {
					t.Errorf("side %d: store at %s %q, want a %v in store_word", i, d.PC[i], d.Instruction.Disasm[i], c.store)
				}
				if cp := d.Instruction.CallPath[i]; len(cp) < 2 || cp[len(cp)-1].Symbol != "store_word" || cp[len(cp)-2].Symbol != "kmain" {
					t.Errorf("side %d call path at the store %v, want ... > kmain > store_word", i, cp)
				}
			}
		})
	}
}

// TestCrossCPUModelsLocalised runs deep-1e3 on two CPU models of each
// architecture (aarch64 cortex-a57 vs max, riscv64 rv64 vs rv64,c=false,
// s390x qemu vs z900) and checks that one binary's divergence is
// localised by instruction to where it reads the CPU model, about 1,000
// instructions after deep_start, in the inlined arch_feature_word.
func TestCrossCPUModelsLocalised(t *testing.T) {
	for _, c := range crossArches {
		t.Run(c.arch, func(t *testing.T) {
			res := runScenario(t, loadCross(t, c, "deep"))
			ins := byKind(res, compare.KindInstruction)
			if len(ins) != 1 {
				t.Fatalf("instruction divergences %+v, want 1 (notes %v)", ins, res.Notes)
			}
			checkFeatureRead(t, c, ins[0])
			if ins[0].Step < 800 || ins[0].Step > 1200 {
				t.Errorf("localised at step %d, want about 1000", ins[0].Step)
			}
		})
	}
}

// checkFeatureRead checks that d is the instruction of kmain, inlined from
// arch_feature_word, that reads the CPU model.
func checkFeatureRead(t *testing.T, c crossArch, d compare.Divergence) {
	t.Helper()
	id := d.Instruction
	for i := range 2 {
		f := strings.Fields(id.Disasm[i])
		if id.Granularity != "instruction" || len(f) == 0 || f[0] != c.feature || d.PC[i].Symbol != "kmain" ||
			len(d.PC[i].Inlined) == 0 || d.PC[i].Inlined[0].Function != "arch_feature_word" {
			t.Errorf("side %d: localised to %s %+v (%q), want %s in arch_feature_word inlined in kmain", i, d.PC[i], d.PC[i].Inlined, id.Disasm[i], c.feature)
		}
	}
	if len(id.Registers) == 0 {
		t.Errorf("no register differs after %q", id.Disasm[0])
	}
}

// TestCrossStepWindow steps both CPU models instruction by instruction
// from deep_start through the gdbstub: the window stops at the
// instruction that reads the CPU model.
func TestCrossStepWindow(t *testing.T) {
	for _, c := range crossArches {
		t.Run(c.arch, func(t *testing.T) {
			sc := loadCross(t, c, "deep")
			sc.Sync = sc.Sync[:1]
			sc.Sync[0].Step = 4999
			sc.Localize.Enabled = false
			res := runScenario(t, sc)
			ins := byKind(res, compare.KindInstruction)
			if len(ins) != 1 {
				t.Fatalf("instruction divergences %+v, want 1 (notes %v)", res.Divergences, res.Notes)
			}
			checkFeatureRead(t, c, ins[0])
			if ins[0].Step <= 0 || ins[0].Step >= 4999 || res.Syncs[0].Steps != ins[0].Step {
				t.Errorf("step %d, window steps %d", ins[0].Step, res.Syncs[0].Steps)
			}
		})
	}
}

// TestCrossCPUProbe runs cpu-probe on the two CPU models: the ID values
// differ in the argument registers at probe_result, and the function the
// guest picks from them shows in the call path at probe_done.
func TestCrossCPUProbe(t *testing.T) {
	for _, c := range crossArches {
		t.Run(c.arch, func(t *testing.T) {
			sc := loadCross(t, c, "cpu-models")
			res := runScenario(t, sc)
			if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
				t.Fatalf("outcome %s, want diverged", res.Outcome)
			}
			regs := map[string]bool{}
			for _, d := range byKind(res, compare.KindRegister) {
				if d.Sync == 0 {
					regs[d.Register.Name] = true
				}
			}
			if !regs[c.arg0] {
				t.Errorf("registers differing at probe_result %v, want %s (the first ID value)", regs, c.arg0)
			}
			found := false
			for _, d := range byKind(res, compare.KindCallPath) {
				u := d.CallPath.Unified
				if d.Sync == syncIndex(t, sc, "probe_done") && strings.Contains(u, "-"+c.fn[0]) && strings.Contains(u, "+"+c.fn[1]) {
					found = true
				}
			}
			if !found {
				t.Errorf("no call-path divergence -%s +%s at probe_done: %+v", c.fn[0], c.fn[1], byKind(res, compare.KindCallPath))
			}
		})
	}
}

// TestCrossRegisterGroups compares every register group between the two
// CPU models: the groups mean the same on both (fpsr and fpcr are "float"
// on aarch64 cortex-a57 and max alike), the registers one model has and the
// other not (SVE on max) are one note per side, not one divergence each
// (cortex-a57's v0-v31 are compared with the low halves of max's z0-z31),
// and registers neither gdbstub reads (riscv64 pmpcfg1, pmpcfg3) are one
// note.
func TestCrossRegisterGroups(t *testing.T) {
	for _, c := range crossArches {
		t.Run(c.arch, func(t *testing.T) {
			sc := loadCross(t, c, "cpu-models")
			sc.Sync = sc.Sync[:1]
			sc.Sync[0].Compare.Registers = []string{"general", "float", "vector", "system"}
			res := runScenario(t, sc)
			for _, d := range byKind(res, compare.KindRegister) {
				if d.Register.Values[0] == "unavailable" || d.Register.Values[1] == "unavailable" {
					t.Errorf("register %s unavailable on one side: %v", d.Register.Name, d.Register.Values)
				}
				if strings.EqualFold(d.Register.Name, "fpsr") || strings.EqualFold(d.Register.Name, "fpcr") || d.Register.Name == "fpc" {
					t.Errorf("float register %s differs: %v", d.Register.Name, d.Register.Values)
				}
			}
			notes := strings.Join(res.Notes, "\n")
			switch c.arch {
			case "aarch64":
				// v0-v31 of cortex-a57 are compared with the low
				// halves of max's z0-z31; z0-z31 stay max's own.
				if strings.Count(notes, "registers only side b (max) has: z0,") != 1 {
					t.Errorf("notes:\n%s\nwant once: max's z0 and more as its own registers", notes)
				}
				if strings.Contains(notes, "v0") {
					t.Errorf("notes:\n%s\nv0 is compared with max's z0, not one model's own", notes)
				}
			case "riscv64":
				if strings.Count(notes, "registers neither side's gdbstub would read: pmpcfg1, pmpcfg3;") != 1 {
					t.Errorf("notes:\n%s\nwant pmpcfg1 and pmpcfg3 unreadable, once", notes)
				}
			}
			if !strings.Contains(notes, "registers") && c.arch != "s390x" {
				t.Errorf("no note on the register sets: %s", notes)
			}
		})
	}
}
