package lockstep

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestHoldPlan checks where a hold stands for each kind of run, from the
// finished result alone: the localised instruction when there is one
// after a sync point both matched at, else the diverging sync point (and
// why), else nothing (and why).
func TestHoldPlan(t *testing.T) {
	pcA, pcB := compare.Location{Addr: 0x1000}, compare.Location{Addr: 0x1004}
	syncPC := [2]compare.Location{{Addr: 0x2000}, {Addr: 0x3000}}
	reg := func(k int) compare.Divergence {
		return compare.Divergence{Kind: compare.KindRegister, Sync: k, PC: syncPC}
	}
	insn := func(k, step int, g compare.Granularity) compare.Divergence {
		return compare.Divergence{Kind: compare.KindInstruction, Sync: k, Step: step, PC: [2]compare.Location{pcA, pcB},
			Instruction: &compare.InstructionDiff{Granularity: g}}
	}
	entry := func(k, a, b int) compare.Divergence {
		d := insn(k, 0, compare.ByFunction)
		d.Instruction.Entry = [2]int{a, b}
		return d
	}
	both := [2]bool{true, true}
	tests := []struct {
		name    string
		same    bool
		traced  bool // the trace engine applies to the pair
		noLocal bool
		reached [][2]bool
		divs    []compare.Divergence
		// found is the instruction divergence the run noted, and from
		// which sync point it counts (holdInstruction).
		found *holdFinding
		err   error

		place  HoldPlace
		sync   int
		steps  int
		reason string // in Reason; "" when held
		why    string // in Why
		want   [2]compare.Location
	}{
		{name: "localised", same: true, reached: [][2]bool{both, both},
			divs:  []compare.Divergence{reg(1), insn(1, 42, compare.ByInstruction)},
			found: &holdFinding{base: 0, d: insn(1, 42, compare.ByInstruction)},
			place: HeldAtInstruction, sync: 0, steps: 41, want: [2]compare.Location{pcA, pcB}},
		{name: "step window", same: true, reached: [][2]bool{both, both},
			divs:  []compare.Divergence{insn(0, 7, compare.ByInstruction)},
			found: &holdFinding{base: 0, d: insn(0, 7, compare.ByInstruction)},
			place: HeldAtInstruction, sync: 0, steps: 6, want: [2]compare.Location{pcA, pcB}},
		{name: "window after a divergent point", same: true, reached: [][2]bool{both},
			divs:  []compare.Divergence{reg(0), insn(0, 7, compare.ByInstruction)},
			found: &holdFinding{base: 0, d: insn(0, 7, compare.ByInstruction)},
			place: HeldAtSync, sync: 0, why: "could not be placed", want: syncPC},
		{name: "from boot", same: true, reached: [][2]bool{both},
			divs:  []compare.Divergence{reg(0), insn(0, 5000, compare.ByInstruction)},
			found: &holdFinding{base: -1, d: insn(0, 5000, compare.ByInstruction)},
			place: HeldAtSync, sync: 0, why: "localised from boot", want: syncPC},
		{name: "from boot, traced", same: true, traced: true, reached: [][2]bool{both},
			divs:  []compare.Divergence{reg(0), insn(0, 5000, compare.ByInstruction)},
			found: &holdFinding{base: -1, d: insn(0, 5000, compare.ByInstruction)},
			place: HeldAtInstruction, sync: -1, steps: 4999, want: [2]compare.Location{pcA, pcB}},
		{name: "deep, traced", same: true, traced: true, reached: [][2]bool{both, both},
			divs:  []compare.Divergence{reg(1)},
			found: &holdFinding{base: 0, d: insn(1, MaxHoldSteps+2, compare.ByInstruction)},
			place: HeldAtInstruction, sync: 0, steps: MaxHoldSteps + 1, want: [2]compare.Location{pcA, pcB}},
		{name: "too deep", same: true, reached: [][2]bool{both, both},
			divs:  []compare.Divergence{reg(1)},
			found: &holdFinding{base: 0, d: insn(1, MaxHoldSteps+2, compare.ByInstruction)},
			place: HeldAtSync, sync: 1, why: "more than the", want: syncPC},
		{name: "exit in the window", same: true, reached: [][2]bool{both, both},
			divs:  []compare.Divergence{{Kind: compare.KindExit, Sync: 0, Step: 6, Summary: "step 6: a exited with status 1, b still running"}},
			place: HeldAtSync, sync: 0, why: "guest exit 6 instructions into the step window", want: syncPC},
		{name: "not localised", same: true, reached: [][2]bool{both, both},
			divs:  []compare.Divergence{reg(1)},
			place: HeldAtSync, sync: 1, why: "no instruction was localised", want: syncPC},
		{name: "two builds", reached: [][2]bool{both, both},
			divs:  []compare.Divergence{reg(1), insn(1, 3, compare.ByFunction)},
			place: HeldAtSync, sync: 1, why: "by function entry", want: syncPC},
		{name: "two builds, call found", reached: [][2]bool{both, both},
			divs:  []compare.Divergence{reg(1), entry(1, 2, 3)},
			found: &holdFinding{base: 0, d: entry(1, 2, 3)},
			place: HeldAtCall, sync: 0, want: [2]compare.Location{pcA, pcB}},
		{name: "two builds, call found at the point", reached: [][2]bool{both, both},
			divs:  []compare.Divergence{entry(1, 1, 1)},
			found: &holdFinding{base: 1, d: entry(1, 1, 1)},
			place: HeldAtCall, sync: 1, want: [2]compare.Location{pcA, pcB}},
		{name: "localisation off", same: true, noLocal: true, reached: [][2]bool{both, both},
			divs:  []compare.Divergence{reg(1)},
			place: HeldAtSync, sync: 1, why: "localisation is off", want: syncPC},
		{name: "arrival", same: true, reached: [][2]bool{both, {true, false}},
			divs:  []compare.Divergence{{Kind: compare.KindArrival, Sync: 1}},
			place: HeldAtSync, sync: 0, why: "the last both reached", want: syncPC},
		{name: "arrival at the first", same: true, reached: [][2]bool{{true, false}},
			divs:   []compare.Divergence{{Kind: compare.KindArrival, Sync: 0}},
			reason: "without reaching it together"},
		{name: "exit only", same: true, reached: [][2]bool{both},
			divs:   []compare.Divergence{{Kind: compare.KindExit, Sync: -1}},
			reason: "after the last sync point"},
		{name: "noise only", same: true, reached: [][2]bool{both},
			divs:   []compare.Divergence{{Kind: compare.KindRegister, Sync: 0, Noise: true}},
			reason: "did not diverge"},
		{name: "identical", same: true, reached: [][2]bool{both, both},
			reason: "did not diverge (outcome identical)"},
		{name: "infrastructure", same: true, reached: [][2]bool{both}, err: errors.Join(ErrInfrastructure, errors.New("qemu died")),
			reason: "a dead or failing QEMU is not held"},
		{name: "scenario error", same: true, err: &ScenarioError{Err: errors.New("no such register")},
			reason: "scenario is in error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &scenario.Scenario{Name: "plan", Expect: scenario.ExpectIdentical}
			sc.Localize.Enabled = !tt.noLocal
			sc.Guests[0].Symbols, sc.Guests[1].Symbols = "a.elf", "b.elf"
			if tt.same {
				sc.Guests[1].Symbols = "a.elf"
			}
			for range max(len(tt.reached), 2) {
				sc.Sync = append(sc.Sync, scenario.SyncPoint{Break: "f", Hit: 1})
			}
			r := newRun(sc, Options{})
			r.hold = &holdFinding{}
			if tt.found != nil {
				*r.hold = *tt.found
				r.hold.found = true
			}
			for k, re := range tt.reached {
				r.res.Syncs[k].Reached = re
				if re[0] && re[1] {
					r.res.Syncs[k].PC = syncPC
					r.res.Syncs[k].Status = SyncMatch
				}
			}
			r.record(0, nil)
			r.res.Divergences = append(r.res.Divergences, tt.divs...)
			r.finish(tt.err)
			if tt.traced {
				// What the run's pair looked like: both TCG, x86_64.
				r.eng = engine.New(engine.Config{Scenario: sc, Same: true, Trace: true, Launcher: &fake.Launcher{}})
				for i := range r.pair {
					r.pair[i] = &guest.Guest{Side: i, Spec: scenario.Guest{Accel: scenario.AccelTCG, Arch: "x86_64"}}
				}
			}
			h := r.holdPlan(tt.err)
			if tt.reason != "" {
				if !strings.Contains(h.Reason, tt.reason) {
					t.Fatalf("Reason %q, want it to say %q", h.Reason, tt.reason)
				}
				return
			}
			if h.Reason != "" {
				t.Fatalf("not held: %s", h.Reason)
			}
			if h.Place != tt.place || h.Sync != tt.sync || h.Steps != tt.steps {
				t.Errorf("held at %s, sync %d + %d steps; want %s, sync %d + %d", h.Place, h.Sync, h.Steps, tt.place, tt.sync, tt.steps)
			}
			if !strings.Contains(h.Why, tt.why) || (tt.why == "") != (h.Why == "") {
				t.Errorf("Why %q, want it to say %q", h.Why, tt.why)
			}
			if h.want[0].Addr != tt.want[0].Addr || h.want[1].Addr != tt.want[1].Addr {
				t.Errorf("expected PCs %v, want %v", h.want, tt.want)
			}
		})
	}
}

// TestGDBCommand checks the printed command and the right gdb per
// architecture.
func TestGDBCommand(t *testing.T) {
	got := gdbCommand(HeldSide{GDB: "gdb", Arch: "i386:x86-64", Socket: "/tmp/l/gdb.sock", Symbols: "/k/my kernel.elf"})
	want := `gdb -ex 'set architecture i386:x86-64' -ex 'target remote /tmp/l/gdb.sock' '/k/my kernel.elf'`
	if got != want {
		t.Errorf("gdbCommand = %s\nwant         %s", got, want)
	}
	if g := gdbFor("no-such-arch"); g != "gdb-multiarch" {
		t.Errorf("gdbFor(foreign) = %s, want gdb-multiarch", g)
	}
	if q := gdbQuote(`/a b/"c".elf`); q != `"/a b/\"c\".elf"` {
		t.Errorf("gdbQuote = %s", q)
	}
}

// TestHoldFake holds a fake pair whose sync point 2 diverges in rax after
// sync point 1 matched: a third pair (after the run's and localisation's)
// stands at the localised instruction with no breakpoint of lockstep's
// left and lockstep's gdbstub connection closed, its process alive until
// Close.
func TestHoldFake(t *testing.T) {
	good := fakeProg(64, fake.Exit, 0)
	bad := fakeProg(64, fake.Exit, 0, fakeReg(0x1010, "rax", 1))
	sc := fakeScenario(t, false, "", localiseBody)
	to := fakeTimeouts()
	l := &fake.Launcher{Program: fake.Sides(good, bad), Dir: t.TempDir(), Timeouts: to}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runDir := t.TempDir()
	res, h, err := RunHold(ctx, sc, Options{RunDir: runDir, NoTraceEngine: true, launcher: l, timeouts: &to})
	if err != nil || res.Outcome != OutcomeDiverged {
		t.Fatalf("run: %v, outcome %s", err, res.Outcome)
	}
	defer h.Close(ctx)
	if h.Reason != "" || h.Place != HeldAtInstruction || h.Sync != 0 || h.Steps != 11 {
		t.Fatalf("hold planned %q at %s, sync %d + %d; want the instruction 11 after sync 0", h.Reason, h.Place, h.Sync, h.Steps)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range h.Sides {
		if s.PC.Addr != 0x100f || !s.AtReported {
			t.Errorf("side %d held at %s (at the report's pc: %v), want 0x100f", i, s.PC, s.AtReported)
		}
		if n := l.Launches(i); n != 3 {
			t.Errorf("side %d launched %d times, want 3 (the run, localisation, the hold)", i, n)
		}
		tg, m := l.Last(i)
		if bps := tg.Breakpoints(); len(bps) != 0 {
			t.Errorf("side %d: breakpoints left in the held guest: %v", i, bps)
		}
		if _, err := tg.PC(ctx); err == nil {
			t.Errorf("side %d: lockstep's gdbstub connection still open", i)
		}
		select {
		case <-m.Exited():
			t.Errorf("side %d: the held guest's process ended", i)
		default:
		}
	}
	if body, err := os.ReadFile(h.Script); err != nil || !strings.Contains(string(body), "add-inferior") {
		t.Errorf("gdb script %s: %v\n%s", h.Script, err, body)
	}
	if why := h.Wait(ctx, time.Millisecond); !strings.Contains(why, "hold timeout") {
		t.Errorf("Wait: %s", why)
	}
	if err := h.Close(ctx); err != nil {
		t.Error(err)
	}
	for i := range 2 {
		if _, m := l.Last(i); m != nil {
			select {
			case <-m.Exited():
			default:
				t.Errorf("side %d: the held guest's process outlived Close", i)
			}
		}
	}
	if left, _ := os.ReadDir(runDir); len(left) > 0 {
		t.Errorf("run directory left behind: %v", left)
	}
}
