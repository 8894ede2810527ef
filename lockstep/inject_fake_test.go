package lockstep

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
)

// Fake calls for the injection tests: the caller calls callee (at
// fakeCallee) calls times from call sites 0x1100, 0x1110, ...; each call
// pushes its return address (the call site + 5) at 0x7ff8, enters with
// rsp 0x7ff8, sets rax to 0x5000+i and returns with rsp 0x8000. Then the
// guest reaches 0x2000 and exits.
const (
	fakeCallee = 0x3000
	fakeEnd    = 0x2000
)

func fakeCallSite(i int) uint64 { return 0x1100 + uint64(i)*0x10 }
func fakeReturn(i int) uint64   { return fakeCallSite(i) + 5 }

func fakeCalls(calls int) fake.Program {
	st := []fake.State{{PC: fakeStart, Regs: map[string]uint64{"rsp": 0x8000}}}
	for i := range calls {
		ret := make([]byte, 8)
		binary.LittleEndian.PutUint64(ret, fakeReturn(i))
		st = append(st,
			fake.State{PC: fakeCallSite(i)},
			fake.State{PC: fakeCallee, Regs: map[string]uint64{"rsp": 0x7ff8}, Mem: map[uint64][]byte{0x7ff8: ret}},
			fake.State{PC: fakeCallee + 1, Regs: map[string]uint64{"rax": 0x5000 + uint64(i)}},
			fake.State{PC: fakeReturn(i), Regs: map[string]uint64{"rsp": 0x8000}},
			fake.State{PC: fakeReturn(i) + 1})
	}
	st = append(st, fake.State{PC: fakeEnd}, fake.State{PC: fakeEnd + 1})
	return fake.Program{States: st, End: fake.Exit}
}

// TestInjectHitCounting: injections at a function's entry or return fire
// at exactly the hit-th call, counted over the whole run (across sync
// points), only on their side, once; an injection at a sync point is
// applied after that point was compared, so its difference shows at the
// next point and not where it was set.
func TestInjectHitCounting(t *testing.T) {
	prog := fakeCalls(5)
	for _, tc := range []struct {
		name, inject string
		// wantPC is where side b stood when injected; wantSync the sync
		// point it was heading to or at.
		wantPC   uint64
		wantSync int
		// diverge is the sync point (0-based) where rbx first differs,
		// -1 for none.
		diverge int
		// syncs replaces the sync points 0x1110 and 0x2000.
		syncs string
	}{
		{"return, 3rd call", `{side: b, at: {return: "0x3000", hit: 3}, set: {rbx: 7}}`, fakeReturn(2), 1, 1, ""},
		{"entry, 2nd call", `{side: b, at: {entry: "0x3000", hit: 2}, set: {rbx: 7}}`, fakeCallee, 1, 1, ""},
		{"return, 1st call before the first point", `{side: b, at: {return: "0x3000"}, set: {rbx: 7}}`, fakeReturn(0), 0, 0, ""},
		{"at sync point 1", `{side: b, at: {sync: 1}, set: {rbx: 7}}`, fakeCallSite(1), 0, 1, ""},
		{"never reached: 9th call", `{side: b, at: {return: "0x3000", hit: 9}, set: {rbx: 7}}`, 0, 0, -1, ""},
		// Set at the very stop a sync point is compared at: not a
		// divergence there, at the next point.
		{"return where a sync point stands", `{side: b, at: {return: "0x3000", hit: 3}, set: {rbx: 7}}`, fakeReturn(2), 1, 2,
			`["0x1110", "0x1125", "0x2000"]`},
		{"sync point, then now", `{side: b, at: {sync: 1}, set: {rbx: 7}}`, fakeCallSite(1), 0, 2,
			`["0x1110", "now", "0x2000"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			syncs := tc.syncs
			if syncs == "" {
				syncs = `["0x1110", "0x2000"]`
			}
			var sl []string
			for _, s := range strings.Split(strings.Trim(syncs, "[]"), ", ") {
				sl = append(sl, "  - break: "+s)
			}
			body := fmt.Sprintf("compare: {registers: [rbx]}\nsync:\n%s\nlocalize: {enabled: false}\ninject:\n  - %s\nexpect: diverge\n",
				strings.Join(sl, "\n"), tc.inject)
			res, l, err := runFake(t, fakeCase{body: body, a: prog, b: prog})
			if err != nil {
				t.Fatal(err)
			}
			ta, _ := l.Last(0)
			tb, _ := l.Last(1)
			if w := ta.Writes(); len(w) != 0 {
				t.Errorf("side a was written: %+v", w)
			}
			writes := tb.Writes()
			if tc.diverge < 0 {
				if len(writes) != 0 || len(res.Injections) != 0 {
					t.Errorf("an injection fired: writes %+v, injections %+v", writes, res.Injections)
				}
				// Identical, with the fault never injected, would say
				// nothing about the recovery from it.
				if res.Outcome != OutcomeIncomplete || res.Passed {
					t.Errorf("outcome %s passed %v, want incomplete", res.Outcome, res.Passed)
				}
				if !slices.ContainsFunc(res.Notes, func(n string) bool {
					return strings.Contains(n, "injection 1 (side b, return of 0x3000 (call 9)) never happened")
				}) {
					t.Errorf("no note that the injection never happened: %q", res.Notes)
				}
				return
			}
			if len(writes) != 1 || writes[0].Reg != "rbx" || writes[0].Value != 7 {
				t.Fatalf("side b writes %+v, want one rbx=7", writes)
			}
			if pc := prog.States[writes[0].At].PC; pc != tc.wantPC {
				t.Errorf("injected at %#x, want %#x", pc, tc.wantPC)
			}
			if len(res.Injections) != 1 {
				t.Fatalf("injections %+v", res.Injections)
			}
			in := res.Injections[0]
			if in.Side != "b" || in.PC.Addr != tc.wantPC || in.Sync != tc.wantSync || in.Set != "rbx=0x7" {
				t.Errorf("recorded %+v, want side b at %#x, sync %d", in, tc.wantPC, tc.wantSync)
			}
			regs := fakeByKind(res, compare.KindRegister)
			if len(regs) == 0 || regs[0].Sync != tc.diverge {
				t.Errorf("register divergences %+v, want the first at sync point %d", regs, tc.diverge+1)
			}
		})
	}
}

// TestInjectReturnOfRecursiveCall: a return injection at a recursive
// call fires when that call returns, not when a deeper call returns to
// the same address (its stack pointer is not above the entry's).
func TestInjectReturnOfRecursiveCall(t *testing.T) {
	word := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	entry := func(sp, ret uint64) fake.State {
		return fake.State{PC: fakeCallee, Regs: map[string]uint64{"rsp": sp}, Mem: map[uint64][]byte{sp: word(ret)}}
	}
	sp := func(pc, sp uint64) fake.State { return fake.State{PC: pc, Regs: map[string]uint64{"rsp": sp}} }
	st := []fake.State{
		sp(fakeStart, 0x8000), {PC: 0x1100},
		entry(0x7ff8, 0x1105), {PC: 0x3010}, // call 1, from the caller
		entry(0x7ff0, 0x3015), {PC: 0x3010}, // call 2, recursive
		entry(0x7fe8, 0x3015), {PC: 0x3001}, // call 3, recursive
		sp(0x3015, 0x7ff0), {PC: 0x3016}, // call 3 returns
		sp(0x3015, 0x7ff8), {PC: 0x3016}, // call 2 returns: here
		sp(0x1105, 0x8000), {PC: fakeEnd}, {PC: fakeEnd + 1},
	}
	want := 10 // the state where call 2 returns
	if st[want].PC != 0x3015 || st[want].Regs["rsp"] != 0x7ff8 {
		t.Fatalf("state %d is %+v", want, st[want])
	}
	prog := fake.Program{States: st, End: fake.Exit}
	body := "compare: {registers: [rbx]}\nsync:\n  - break: \"0x2000\"\nlocalize: {enabled: false}\n" +
		"inject:\n  - {side: b, at: {return: \"0x3000\", hit: 2}, set: {rbx: 7}}\nexpect: diverge\n"
	res, l, err := runFake(t, fakeCase{body: body, a: prog, b: prog})
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := l.Last(1)
	w := tb.Writes()
	if len(w) != 1 || w[0].At != want {
		t.Fatalf("writes %+v, want one at state %d (call 2's return)", w, want)
	}
	if len(res.Injections) != 1 || res.Injections[0].PC.Addr != 0x3015 {
		t.Errorf("injections %+v", res.Injections)
	}
}
