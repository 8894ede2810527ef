package lockstep_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestInjectAllocFailure is the acceptance test of fault injection: the
// allocator guest on both sides, alloc's 3rd return forced to NULL on b at
// a sync point. The injection is reported as a deliberate difference and
// not as a divergence where it was set; the recovery makes the results
// differ at report, and localisation names the first consequence, the
// NULL test in make_item. Without the injection the pair is identical.
func TestInjectAllocFailure(t *testing.T) {
	// Both ways back to sync point 2 re-apply the injection (and report
	// it once): a relaunch replays it, a snapshot was saved before it.
	for _, mode := range []string{scenario.CheckpointRestart, scenario.CheckpointSnapshot} {
		t.Run(mode, func(t *testing.T) {
			sc := load(t, "alloc-inject.yaml")
			sc.Localize.Checkpoint = mode
			checkAllocInjected(t, runScenario(t, sc))
		})
	}

	clean := load(t, "alloc-inject.yaml")
	clean.Inject = nil
	clean.Expect = "identical"
	res := runScenario(t, clean)
	if res.Outcome != lockstep.OutcomeIdentical || !res.Passed || len(res.Injections) != 0 {
		t.Errorf("without the injection: outcome %s passed %v injections %v, want identical", res.Outcome, res.Passed, res.Injections)
	}
}

func checkAllocInjected(t *testing.T, res *lockstep.Result) {
	t.Helper()
	if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
		t.Fatalf("outcome %s passed %v, want diverged, passed (expect: diverge); notes %v", res.Outcome, res.Passed, res.Notes)
	}
	if len(res.Injections) != 1 {
		t.Fatalf("injections %+v, want one", res.Injections)
	}
	in := res.Injections[0]
	if in.Side != "b" || in.Sync != 1 || in.PC.Symbol != "make_item" || in.Set != "rax=0x0" {
		t.Errorf("injection %+v, want b at sync point 2 in make_item, rax=0x0", in)
	}
	if res.Syncs[1].Status != lockstep.SyncMatch {
		t.Errorf("sync point 2 (where rax was set) is %s, want match: the injection is not a divergence there", res.Syncs[1].Status)
	}
	mem := byKind(res, compare.KindMemory)
	if len(mem) == 0 || mem[0].Sync != 2 || !strings.Contains(mem[0].Summary, "results") {
		t.Errorf("no results divergence at report: %+v", mem)
	}
	var first *compare.Divergence
	for i, d := range res.Divergences {
		if d.Kind == compare.KindInstruction && d.Instruction != nil && !strings.Contains(d.Summary, "write") {
			first = &res.Divergences[i]
			break
		}
	}
	if first == nil {
		t.Fatalf("the first consequence was not localised: %+v", res.Divergences)
	}
	if first.PC[1].Symbol != "make_item" || !strings.Contains(first.Summary, "test") || !strings.Contains(first.Summary, "eflags") {
		t.Errorf("first consequence %q at %v, want make_item's test of the NULL (eflags)", first.Summary, first.PC[1])
	}
	// The stores localised are the error path's: results[2] gets 0xdead.
	found := false
	for _, d := range res.Divergences {
		if d.Kind == compare.KindInstruction && strings.Contains(d.Summary, "results+0x10") && strings.Contains(d.Summary, "0xdead") {
			found = true
		}
	}
	if !found {
		t.Errorf("the store of 0xdead to results[2] was not localised: %+v", res.Divergences)
	}
}

// TestInjectAllocReturnHit: the injection at alloc's return, 3rd call,
// with no sync point there: it fires on b only, in make_item, and only
// results[2] onwards differ (the 1st and 2nd calls were left alone).
func TestInjectAllocReturnHit(t *testing.T) {
	sc := load(t, "alloc-inject-return.yaml")
	res := runScenario(t, sc)
	if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
		t.Fatalf("outcome %s passed %v; notes %v", res.Outcome, res.Passed, res.Notes)
	}
	if len(res.Injections) != 1 || res.Injections[0].Where != "return of alloc (call 3)" || res.Injections[0].PC.Symbol != "make_item" {
		t.Fatalf("injections %+v", res.Injections)
	}
	mem := byKind(res, compare.KindMemory)
	if len(mem) != 1 || mem[0].Memory == nil {
		t.Fatalf("memory divergences %+v", mem)
	}
	if !strings.Contains(mem[0].Summary, "first at +0x10") {
		t.Errorf("%q: want results[2] (+0x10) the first to differ: the 3rd call, not an earlier one", mem[0].Summary)
	}
}

// TestInjectedValueIsNotTheFinding: a sync point after an injection at
// which the injected register still holds the injected value (rax=0 just
// after alloc returned) is not reported as if that register were what
// diverged: the consequence (eflags of the NULL test) comes first, and the
// register is marked as holding the injected value. When only the injected
// register differs, it is the first divergence, marked so.
func TestInjectedValueIsNotTheFinding(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	kernel := qemutest.Guest(t, "alloc")
	dir := qemutest.ShortDir(t)
	for _, tc := range []struct {
		regs, first string
	}{
		{"[general]", "eflags"},
		{"[rax]", "rax"},
	} {
		sc := parseScenario(t, dir, fmt.Sprintf(`name: inject-persist
timeout: 60s
guests:
  defaults: {kernel: %s}
  a: {label: clean}
  b: {label: injected}
compare:
  registers: %s
  ignore: [eflags.RF]
sync:
  - break: kmain
  - {break: alloc, at: return, hit: 3}
  - break: make_item+0x19
localize: {enabled: false}
inject:
  - side: b
    at: {sync: 2}
    set: {rax: 0}
expect: diverge
`, kernel, tc.regs))
		res := runScenario(t, sc)
		var first *compare.Divergence
		for i := range res.Divergences {
			if !res.Divergences[i].Noise {
				first = &res.Divergences[i]
				break
			}
		}
		if first == nil || first.Register == nil || first.Register.Name != tc.first {
			t.Fatalf("registers %s: first divergence %+v, want register %s", tc.regs, first, tc.first)
		}
		marked := false
		for _, d := range res.Divergences {
			if d.Register != nil && d.Register.Name == "rax" {
				marked = strings.Contains(d.Summary, "b still holds the value injected at sync point 2")
			}
			if d.Register != nil && d.Register.Name != "rax" && strings.Contains(d.Summary, "injected") {
				t.Errorf("registers %s: %s marked as injected: %s", tc.regs, d.Register.Name, d.Summary)
			}
		}
		if !marked {
			t.Errorf("registers %s: the rax divergence does not say it is the injected value: %+v", tc.regs, res.Divergences)
		}
	}
}

// TestInjectRefusedIsTheScenarios: an injection QEMU cannot carry out as
// written is the scenario's error (exit 2) with its file:line:col, not an
// infrastructure failure and not a silent truncation: a value wider than
// the register, a write to a virtual address the guest has not mapped.
func TestInjectRefusedIsTheScenarios(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	kernel := qemutest.Guest(t, "alloc")
	dir := qemutest.ShortDir(t)
	for _, tc := range []struct{ set, want string }{
		{"{eflags: 0x1ffffffff}", "attach.yaml:12:11: eflags=0x1ffffffff does not fit guest b (injected)'s 32-bit register eflags"},
		{"{rax: 1, rxx: 0}", `attach.yaml:12:19: guest b (injected) has no register "rxx"`},
		{`{memory: {address: 0x7fff00000000, bytes: "01"}}`, "attach.yaml:12:19: injection 1 (sync point 1): guest b (injected) cannot write 1 bytes at 0x7fff00000000"},
	} {
		sc := parseScenario(t, dir, fmt.Sprintf(`name: inject-refused
guests:
  defaults: {kernel: %s}
  a: {label: clean}
  b: {label: injected}
sync:
  - break: kmain
  - break: report
inject:
  - side: b
    at: {sync: 1}
    set: %s
`, kernel, tc.set))
		_, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: qemutest.ShortDir(t)})
		var se *lockstep.ScenarioError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("set %s: err %v, want a scenario error %q", tc.set, err, tc.want)
		}
		if errors.Is(err, lockstep.ErrInfrastructure) {
			t.Errorf("set %s: an infrastructure failure: %v", tc.set, err)
		}
	}
	noLeftovers(t)
}

// TestInjectTooManyHardwareBreakpoints: under KVM breakpoints are the
// CPU's debug registers (x86: 4); a scenario whose function injections
// need more at once is told so as a scenario error (exit 2), not an
// infrastructure failure with a bare E22.
func TestInjectTooManyHardwareBreakpoints(t *testing.T) {
	qemutest.RequireKVM(t, "qemu64")
	kernel := qemutest.Guest(t, "alloc")
	dir := qemutest.ShortDir(t)
	sc := parseScenario(t, dir, fmt.Sprintf(`name: inject-hw
timeout: 60s
guests:
  defaults: {kernel: %s, accel: kvm, cpu: qemu64, bios: /usr/share/qemu/qboot.rom}
  a: {label: clean}
  b: {label: injected}
sync:
  - break: kmain
  - break: report
inject:
  - {side: b, at: {entry: alloc, hit: 5}, set: {rdi: 0}}
  - {side: b, at: {entry: fill, hit: 5}, set: {rdi: 0}}
  - {side: b, at: {entry: make_item, hit: 5}, set: {rdi: 0}}
  - {side: b, at: {entry: report, hit: 2}, set: {rax: 0}}
`, kernel))
	if _, err := os.Stat("/usr/share/qemu/qboot.rom"); err != nil {
		t.Skipf("qboot (Debian package qemu-system-data) is needed to boot under nested KVM quickly: %v", err)
	}
	_, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: qemutest.ShortDir(t)})
	var se *lockstep.ScenarioError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "was refused with 4 already in place: the CPU has few debug registers") {
		t.Errorf("err %v, want a scenario error about the hardware breakpoints", err)
	}
	if errors.Is(err, lockstep.ErrInfrastructure) {
		t.Errorf("an infrastructure failure: %v", err)
	}
	noLeftovers(t)
}
