package lockstep_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/reports"
)

// TestStepWindowAfterDifference steps cpu-probe on qemu64 against max
// from the CPUID sync point, where rcx and r8 already differ: the first
// step must not be blamed for them, and any instruction reported later
// says they already differed (issue 15, item 1).
func TestStepWindowAfterDifference(t *testing.T) {
	sc := load(t, "cpu-models.yaml")
	sc.Sync[0].Step = 12
	res := runScenario(t, sc)
	regs := byKind(res, compare.KindRegister)
	if len(regs) == 0 || regs[0].Sync != 0 {
		t.Fatalf("no register divergence at cpuid_result: %+v", res.Divergences)
	}
	for _, d := range byKind(res, compare.KindInstruction) {
		if d.Sync != 0 || !strings.Contains(d.Summary, "step window") {
			continue // localisation from boot
		}
		if d.Step == 1 {
			t.Errorf("step 1 blamed for a difference that was there before it: %s", d.Summary)
		}
		if !strings.Contains(d.Summary, "already differed when stepping began") {
			t.Errorf("instruction divergence %q does not say what already differed", d.Summary)
		}
	}
	if s := res.Syncs[0].Steps; s < 2 {
		t.Errorf("the window stopped after %d steps", s)
	}
}

// TestWriteLocalisationBeyondOldBudget: 400 stores to one word, the 300th
// differs. Write localisation names store #300 and never says both "not
// all seen" and "the same" (issue 15, item 3).
func TestWriteLocalisationBeyondOldBudget(t *testing.T) {
	res := runScenario(t, load(t, "stores.yaml"))
	found := false
	for _, d := range byKind(res, compare.KindInstruction) {
		if d.Instruction != nil && d.Instruction.Granularity == compare.ByWrite && strings.Contains(d.Summary, "to stores_out+0x0") {
			found = true
			if !strings.Contains(d.Summary, "write #300 to stores_out+0x0 in store_word: 0x12c0 vs 0x12c1") {
				t.Errorf("write localised as %q, want store #300 in store_word", d.Summary)
			}
		}
	}
	if !found {
		t.Errorf("no store to stores_out+0x0 localised; notes %q", res.Notes)
	}
	for _, n := range res.Notes {
		if strings.Contains(n, "not all seen") || strings.Contains(n, "are the same on both sides") {
			t.Errorf("note %q", n)
		}
	}
}

// TestRealModeReportSize localises a memory difference in 16-bit real-mode
// code: the Markdown report stays under 10 KB and holds each note once
// (issue 15, item 2).
func TestRealModeReportSize(t *testing.T) {
	res := runScenario(t, load(t, "rm16.yaml"))
	var md bytes.Buffer
	if err := reports.Render(&md, reports.FormatMarkdown, res, reports.Options{}); err != nil {
		t.Fatal(err)
	}
	if md.Len() >= 10<<10 {
		t.Errorf("Markdown report of %d bytes, want under 10 KB", md.Len())
	}
	seen := map[string]bool{}
	for _, n := range res.Notes {
		if seen[n] {
			t.Errorf("note %q twice", n)
		}
		seen[n] = true
	}
	if len(byKind(res, compare.KindInstruction)) == 0 {
		t.Errorf("nothing localised in real-mode code: notes %q", res.Notes)
	}
}

// TestLocaliseFromBoot: when the first sync point already differs,
// localisation starts from boot instead of asking for an earlier sync point
// (issue 9, item 5): by trace with one binary, by function entry and write
// watchpoint between builds.
func TestLocaliseFromBoot(t *testing.T) {
	t.Run("one binary", func(t *testing.T) {
		sc := load(t, "deep.yaml")
		sc.Sync = sc.Sync[1:] // deep_verify only
		res := runScenario(t, sc)
		ins := byKind(res, compare.KindInstruction)
		if len(ins) != 1 || !strings.Contains(ins[0].Summary, "instructions after boot") ||
			ins[0].PC[0].Symbol != "kmain" || ins[0].Instruction.Disasm[0] != "cpuid" {
			t.Fatalf("localised %+v; notes %q; want the cpuid in kmain, after boot", ins, res.Notes)
		}
	})
	t.Run("two builds", func(t *testing.T) {
		sc := load(t, "demo.yaml")
		sc.Sync = sc.Sync[len(sc.Sync)-1:] // report only
		sc.Trace.Functions = nil
		res := runScenario(t, sc)
		var byCall, byWrite bool
		for _, d := range byKind(res, compare.KindInstruction) {
			if !strings.Contains(d.Summary, "between boot and sync point 1") {
				t.Errorf("localised %q, want between boot and sync point 1", d.Summary)
			}
			byCall = byCall || d.Instruction.Granularity == compare.ByFunction && strings.Contains(d.Summary, "path_b vs path_c")
			byWrite = byWrite || d.Instruction.Granularity == compare.ByWrite && strings.Contains(d.Summary, "to results+0x28 in kmain")
		}
		if !byCall || !byWrite {
			t.Errorf("want the path_b/path_c call and the store to results+0x28 localised; got %+v, notes %q",
				byKind(res, compare.KindInstruction), res.Notes)
		}
		for _, n := range res.Notes {
			if strings.Contains(n, "add an earlier sync point") {
				t.Errorf("note %q", n)
			}
		}
	})
}

// TestABIBetweenBuilds compares the general registers of two builds where
// the calling convention gives most of them no meaning (issue 9, item 4):
// at the return of stores_total only its return value (rax) differs; at
// the entry of stores_done, which reads no argument, no register does:
// the leftovers are an informational note. With only stores_done, the
// first divergence is the memory and its cause, found from boot (item 5),
// is the differing store.
func TestABIBetweenBuilds(t *testing.T) {
	t.Run("entry and return", func(t *testing.T) {
		res := runScenario(t, load(t, "stores-abi.yaml"))
		var regs []string
		for _, d := range byKind(res, compare.KindRegister) {
			regs = append(regs, fmt.Sprintf("%d:%s", d.Sync, d.Register.Name))
		}
		if !slices.Equal(regs, []string{"0:rax"}) {
			t.Errorf("register divergences %v, want only rax at the return of stores_total", regs)
		}
		for _, d := range byKind(res, compare.KindInstruction) {
			if strings.Contains(d.Summary, "does not read") {
				t.Errorf("localised on a register the function does not read: %s", d.Summary)
			}
		}
		// stores_out differs in two words: +0x0 (the stores before sync 1)
		// and +0x8 (the sum stored after it): each is localised on its own.
		stored := false
		for _, d := range byKind(res, compare.KindInstruction) {
			stored = stored || strings.Contains(d.Summary, "write #1 to stores_out+0x8 in kmain: 0x139480 vs 0x1394e5")
		}
		if !stored {
			t.Errorf("the store of the sum to stores_out+0x8 is not localised: %+v", byKind(res, compare.KindInstruction))
		}
		informational := 0
		for _, n := range res.Notes {
			if strings.Contains(n, "informational") {
				informational++
			}
		}
		if informational != 2 {
			t.Errorf("%d informational notes, want one per sync point: %q", informational, res.Notes)
		}
	})
	t.Run("from boot", func(t *testing.T) {
		sc := load(t, "stores-abi.yaml")
		sc.Sync = sc.Sync[1:] // stores_done only
		res := runScenario(t, sc)
		if n := len(byKind(res, compare.KindRegister)); n != 0 {
			t.Errorf("%d register divergences at a function entry that reads no argument: %+v", n, byKind(res, compare.KindRegister))
		}
		if len(res.Divergences) == 0 || res.Divergences[0].Kind != compare.KindMemory {
			t.Fatalf("first divergence %+v, want the memory", res.Divergences)
		}
		found := false
		for _, d := range byKind(res, compare.KindInstruction) {
			found = found || d.Instruction.Granularity == compare.ByWrite &&
				strings.Contains(d.Summary, "between boot and sync point 1") && strings.Contains(d.Summary, "to stores_out+0x0 in store_word: 0x12c0 vs 0x12c1")
		}
		if !found {
			t.Errorf("the differing store is not localised from boot: %+v", byKind(res, compare.KindInstruction))
		}
	})
}
