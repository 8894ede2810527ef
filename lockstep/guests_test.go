package lockstep_test

// Real-QEMU tests of the guests that are not 64-bit kernels on one vCPU:
// rm16 (sync points, a step window and a localisation in 16-bit real-mode
// code) and smp (a sync point on the application processor). See
// testdata/guests/README.md for what the guests do.

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// guestRuns is how many times the identical runs are repeated: each must
// come out the same way every time.
const guestRuns = 5

// loadGuestScenario builds the named guests if needed and loads a scenario
// from testdata/scenarios.
func loadGuestScenario(t *testing.T, name string, guests ...string) *scenario.Scenario {
	t.Helper()
	qemutest.Require(t, "x86_64", "tcg")
	for _, g := range guests {
		qemutest.Guest(t, g)
	}
	sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runGuestScenario runs sc and fails the test on an error or a QEMU left
// running.
func runGuestScenario(t *testing.T, sc *scenario.Scenario) *lockstep.Result {
	t.Helper()
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{})
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
	return res
}

// describe is a result in a few lines, for failure messages.
func describe(res *lockstep.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "outcome %s passed=%v mode %s error %q", res.Outcome, res.Passed, res.Mode, res.Error)
	for _, s := range res.Syncs {
		fmt.Fprintf(&b, "\n  sync %d %s: %s reached %v pc %s/%s steps %d", s.Index+1, s.Break, s.Status, s.Reached, s.PC[0], s.PC[1], s.Steps)
	}
	for _, d := range res.Divergences {
		fmt.Fprintf(&b, "\n  [%s] sync %d: %s (pc %s / %s)", d.Kind, d.Sync+1, d.Summary, d.PC[0], d.PC[1])
		if in := d.Instruction; in != nil {
			fmt.Fprintf(&b, "\n    by %s: a %q %s, b %q %s", in.Granularity, in.Disasm[0], in.Bytes[0], in.Disasm[1], in.Bytes[1])
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "\n  note: %s", n)
	}
	return b.String()
}

// syncAt returns the index of the sync point that breaks at brk.
func syncAt(t *testing.T, sc *scenario.Scenario, brk string) int {
	t.Helper()
	for i, sp := range sc.Sync {
		if sp.Break == brk {
			return i
		}
	}
	t.Fatalf("scenario %s has no sync point %q", sc.Name, brk)
	return -1
}

// localisedBy returns the instruction divergences found with granularity g.
func localisedBy(res *lockstep.Result, g compare.Granularity) []compare.Divergence {
	var out []compare.Divergence
	for _, d := range res.Divergences {
		if d.Kind == compare.KindInstruction && d.Instruction != nil && d.Instruction.Granularity == g {
			out = append(out, d)
		}
	}
	return out
}

// requireIdentical checks a run that must find nothing: identical,
// passed, every sync point reached by both sides and matched.
func requireIdentical(t *testing.T, res *lockstep.Result) {
	t.Helper()
	if res.Outcome != lockstep.OutcomeIdentical || !res.Passed || len(res.Divergences) != 0 {
		t.Fatalf("want identical and passed with no divergence:\n%s", describe(res))
	}
	if res.Reached() != len(res.Syncs) {
		t.Fatalf("reached %d of %d sync points:\n%s", res.Reached(), len(res.Syncs), describe(res))
	}
	for _, s := range res.Syncs {
		if s.Status != lockstep.SyncMatch {
			t.Fatalf("sync %d %s: status %s, want match:\n%s", s.Index+1, s.Break, s.Status, describe(res))
		}
	}
}

// elfCode is a function of an ELF: its address and its bytes.
type elfCode struct {
	addr uint64
	code []byte
}

// elfSymbols reads the named symbols' addresses from an ELF, and the code
// of those that are functions (from the section holding them: in the rm16
// guests the link address, not the load address).
func elfSymbols(t *testing.T, path string) map[string]elfCode {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]elfCode{}
	for _, s := range syms {
		c := elfCode{addr: s.Value}
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && int(s.Section) < len(f.Sections) {
			sec := f.Sections[s.Section]
			data, err := sec.Data()
			if err != nil {
				t.Fatal(err)
			}
			off := s.Value - sec.Addr
			c.code = data[off : off+s.Size]
		}
		out[s.Name] = c
	}
	return out
}

// moffs16 finds, in a function's code, the real-mode instruction opcode
// with a 16-bit absolute address operand (a1: mov moffs16,%ax; a3: mov
// %ax,moffs16) and returns its offset and bytes.
func moffs16(t *testing.T, fn elfCode, opcode byte, addr uint64) (uint64, []byte) {
	t.Helper()
	insn := []byte{opcode, byte(addr), byte(addr >> 8)}
	i := bytes.Index(fn.code, insn)
	if i < 0 {
		t.Fatalf("no %x in the function's code %x", insn, fn.code)
	}
	return uint64(i), insn
}

// regValue parses a register value of a RegisterDiff ("0x...").
func regValue(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("register value %q: %v", s, err)
	}
	return v
}

// rm16Plant is what the good and the bad build (or input 0 and input 1)
// store into rm_table[5], at offset 0xa.
const (
	rm16PlantGood = 0x1111
	rm16PlantBad  = 0x1112
	rm16PlantOff  = 0xa
)

// TestGuestRM16Self runs the 16-bit real-mode guest against itself five
// times: sync points in real-mode code (CS = 0, eip = linear address), a
// 20-step window inside rm_checksum, and rm_table compared at rm_done. Every
// run must be identical with all four points reached and matched, and the
// window stepped to its end.
func TestGuestRM16Self(t *testing.T) {
	for run := 1; run <= guestRuns; run++ {
		sc := loadGuestScenario(t, "rm16-self.yaml", "rm16-good")
		win := syncAt(t, sc, "rm_checksum")
		res := runGuestScenario(t, sc)
		if res.Mode != lockstep.ModeSameBinary {
			t.Fatalf("run %d: mode %s, want same-binary", run, res.Mode)
		}
		requireIdentical(t, res)
		if got, want := res.Syncs[win].Steps, sc.Sync[win].Step; want == 0 || got != want {
			t.Fatalf("run %d: the window at rm_checksum stepped %d instructions, want %d:\n%s", run, got, want, describe(res))
		}
		for _, s := range res.Syncs {
			if s.PC[0].Symbol != s.Break || s.PC[0].Offset != 0 || !s.PC[0].SameCode(s.PC[1]) {
				t.Fatalf("run %d: sync %d %s stopped at %s / %s", run, s.Index+1, s.Break, s.PC[0], s.PC[1])
			}
		}
	}
}

// checkRM16Memory checks the divergences a run of rm16-good against a
// guest that stores rm16PlantBad must report at rm_done: exactly one
// memory divergence, rm_table's byte 0xa, and nothing before rm_done.
func checkRM16Memory(t *testing.T, sc *scenario.Scenario, res *lockstep.Result) int {
	t.Helper()
	done := syncAt(t, sc, "rm_done")
	if res.Outcome != lockstep.OutcomeDiverged || !res.Passed || res.Reached() != len(sc.Sync) {
		t.Fatalf("want diverged, passed, every sync point reached:\n%s", describe(res))
	}
	for i, s := range res.Syncs {
		want := lockstep.SyncMatch
		if i == done {
			want = lockstep.SyncDiverge
		}
		if s.Status != want {
			t.Fatalf("sync %d %s: status %s, want %s:\n%s", i+1, s.Break, s.Status, want, describe(res))
		}
	}
	var mems []compare.Divergence
	for _, d := range res.Divergences {
		if d.Sync != done {
			t.Errorf("divergence at sync %d (%s), want all at rm_done: %s", d.Sync+1, d.SyncName, d.Summary)
		}
		if d.Kind == compare.KindMemory {
			mems = append(mems, d)
		}
	}
	if len(mems) != 1 {
		t.Fatalf("%d memory divergences, want 1 (rm_table):\n%s", len(mems), describe(res))
	}
	m := mems[0].Memory
	if m.Name != "rm_table" || m.DiffBytes != 1 || m.FirstOffset != rm16PlantOff {
		t.Fatalf("memory divergence %s: %d bytes differ, first at %#x; want rm_table, 1 byte at %#x", m.Name, m.DiffBytes, m.FirstOffset, rm16PlantOff)
	}
	return done
}

// checkRM16Write checks the write localisation: one divergence found by
// write watchpoint at rm_done, a store in rm_main on both sides, whose
// values carry the two planted halfwords. It returns it.
func checkRM16Write(t *testing.T, res *lockstep.Result, done int) compare.Divergence {
	t.Helper()
	ws := localisedBy(res, compare.ByWrite)
	if len(ws) != 1 {
		t.Fatalf("%d divergences localised by write, want 1:\n%s", len(ws), describe(res))
	}
	w := ws[0]
	good, bad := fmt.Sprintf("%x", rm16PlantGood), fmt.Sprintf("%x", rm16PlantBad)
	if w.Sync != done || w.PC[0].Symbol != "rm_main" || w.PC[1].Symbol != "rm_main" ||
		!strings.Contains(w.Summary, "rm_table") || !strings.Contains(w.Summary, "in rm_main") ||
		!strings.Contains(w.Summary, good) || !strings.Contains(w.Summary, bad) {
		t.Fatalf("write localisation %q at sync %d, pc %s / %s; want the store of %s vs %s to rm_table in rm_main before rm_done:\n%s",
			w.Summary, w.Sync+1, w.PC[0], w.PC[1], good, bad, describe(res))
	}
	return w
}

// checkRM16StoreDecoded checks that the localised store is the real-mode
// instruction that stores the planted value ("mov %ax,rm_table+0xa",
// a3 <addr16>), decoded as 16-bit code, on both sides.
func checkRM16StoreDecoded(t *testing.T, res *lockstep.Result, w compare.Divergence, syms [2]map[string]elfCode) {
	t.Helper()
	for i := range syms {
		main, table := syms[i]["rm_main"], syms[i]["rm_table"]
		off, insn := moffs16(t, main, 0xa3, table.addr+rm16PlantOff)
		in := w.Instruction
		if w.PC[i].Symbol != "rm_main" || w.PC[i].Offset != off || in.Bytes[i] != hex.EncodeToString(insn) ||
			!strings.Contains(in.Disasm[i], "%ax") {
			t.Errorf("side %d: store localised at %s as %q (bytes %q); want rm_main+%#x, bytes %x, a 16-bit store of %%ax:\n%s",
				i, w.PC[i], in.Disasm[i], in.Bytes[i], off, insn, describe(res))
		}
	}
}

// TestGuestRM16Builds runs rm16-good against rm16-bad (two builds, same
// layout, one immediate apart): rm_table differs at rm_done in exactly the
// planted byte, and localisation finds the store in rm_main with a write
// watchpoint, in 16-bit code. The subtest decode16 checks that the store is
// reported as the 16-bit instruction it is, at its own address.
func TestGuestRM16Builds(t *testing.T) {
	sc := loadGuestScenario(t, "rm16.yaml", "rm16-good", "rm16-bad")
	res := runGuestScenario(t, sc)
	if res.Mode != lockstep.ModeDifferentBuilds {
		t.Fatalf("mode %s, want different-builds", res.Mode)
	}
	done := checkRM16Memory(t, sc, res)
	w := checkRM16Write(t, res, done)
	t.Run("decode16", func(t *testing.T) {
		syms := [2]map[string]elfCode{elfSymbols(t, sc.Guests[0].Symbols), elfSymbols(t, sc.Guests[1].Symbols)}
		checkRM16StoreDecoded(t, res, w, syms)
	})
}

// TestGuestRM16Input runs one binary, rm16-good, with two inputs (side b
// gets 1 at guest-physical 0x200000 through QEMU's generic loader): the
// same divergence at rm_done as between the builds, now localised
// instruction by instruction in 16-bit code: the first instruction after
// which the registers differ is the load of rm16_delta in rm_main (rax 0
// vs 1), and the write watchpoint finds the store. The subtest decode16
// checks both instructions are decoded as the 16-bit code they are.
func TestGuestRM16Input(t *testing.T) {
	sc := loadGuestScenario(t, "rm16-input.yaml", "rm16-good")
	res := runGuestScenario(t, sc)
	if res.Mode != lockstep.ModeSameBinary {
		t.Fatalf("mode %s, want same-binary", res.Mode)
	}
	done := checkRM16Memory(t, sc, res)
	w := checkRM16Write(t, res, done)

	syms := elfSymbols(t, sc.Guests[0].Symbols)
	loadOff, load := moffs16(t, syms["rm_main"], 0xa1, syms["rm16_delta"].addr)
	is := localisedBy(res, compare.ByInstruction)
	if len(is) != 1 {
		t.Fatalf("%d divergences localised by instruction, want 1:\n%s", len(is), describe(res))
	}
	d := is[0]
	if d.Sync != done || !d.PC[0].SameCode(d.PC[1]) || d.PC[0].Symbol != "rm_main" || d.PC[0].Offset != loadOff {
		t.Fatalf("first divergent instruction at sync %d, pc %s / %s; want rm_main+%#x (the load of rm16_delta) before rm_done:\n%s",
			d.Sync+1, d.PC[0], d.PC[1], loadOff, describe(res))
	}
	var rax *compare.RegisterDiff
	for i := range d.Instruction.Registers {
		if d.Instruction.Registers[i].Name == "rax" {
			rax = &d.Instruction.Registers[i]
		}
	}
	if rax == nil || regValue(t, rax.Values[0]) != 0 || regValue(t, rax.Values[1]) != 1 {
		t.Fatalf("registers after the load: %+v; want rax 0 vs 1", d.Instruction.Registers)
	}
	t.Run("decode16", func(t *testing.T) {
		for i := range 2 {
			if d.Instruction.Bytes[i] != hex.EncodeToString(load) || !strings.Contains(d.Instruction.Disasm[i], "%ax") {
				t.Errorf("side %d: load disassembled as %q (bytes %q); want bytes %x, a 16-bit load into %%ax", i, d.Instruction.Disasm[i], d.Instruction.Bytes[i], load)
			}
		}
		checkRM16StoreDecoded(t, res, w, [2]map[string]elfCode{syms, syms})
	})
}

// TestGuestSMPApplicationProcessor runs the smp guest against itself on
// two vCPUs five times: kmain (BSP), ap_work (run only by the application
// processor, which the BSP starts with INIT-SIPI-SIPI) with a 40-step
// window and a backtrace, and smp_done (BSP) with the AP's results in
// memory. Every run must be identical with all three points reached on
// both sides, the window stepped to its end, and both guests exited with
// status 1 (the BSP saw the AP's ID and result right). A control run
// starts side b with one vCPU: there ap_work is never reached.
func TestGuestSMPApplicationProcessor(t *testing.T) {
	for run := 1; run <= guestRuns; run++ {
		sc := loadGuestScenario(t, "smp-ap.yaml", "smp")
		ap := syncAt(t, sc, "ap_work")
		if sc.Guests[0].SMP != 2 || sc.Guests[1].SMP != 2 {
			t.Fatalf("smp %d and %d, want 2", sc.Guests[0].SMP, sc.Guests[1].SMP)
		}
		res := runGuestScenario(t, sc)
		requireIdentical(t, res)
		s := res.Syncs[ap]
		if s.PC[0].Symbol != "ap_work" || s.PC[0].Offset != 0 || !s.PC[1].SameCode(s.PC[0]) {
			t.Fatalf("run %d: ap_work stopped at %s / %s:\n%s", run, s.PC[0], s.PC[1], describe(res))
		}
		if want := sc.Sync[ap].Step; want == 0 || s.Steps != want {
			t.Fatalf("run %d: the window at ap_work stepped %d instructions, want %d:\n%s", run, s.Steps, want, describe(res))
		}
		for i, side := range res.Sides {
			if side.State != lockstep.StateExited || side.ExitCode == nil || *side.ExitCode != 1 {
				t.Fatalf("run %d: side %d ended %s (exit code %v), want exited with status 1:\n%s", run, i, side.State, side.ExitCode, describe(res))
			}
		}
	}

	t.Run("one-vcpu", func(t *testing.T) {
		sc := loadGuestScenario(t, "smp-ap.yaml", "smp")
		ap := syncAt(t, sc, "ap_work")
		sc.Guests[1].SMP = 1
		sc.Sync[ap].Timeout = 3 * time.Second
		res := runGuestScenario(t, sc)
		if got := res.Syncs[ap].Reached; got != [2]bool{true, false} {
			t.Fatalf("ap_work reached %v, want by side a only (side b has no AP):\n%s", got, describe(res))
		}
		var arrival bool
		for _, d := range res.Divergences {
			arrival = arrival || d.Kind == compare.KindArrival && d.Sync == ap
		}
		if !arrival || res.Outcome != lockstep.OutcomeDiverged {
			t.Fatalf("want an arrival divergence at ap_work:\n%s", describe(res))
		}
	})
}
