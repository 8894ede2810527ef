package lockstep_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// withGuest returns a copy of sc whose sides both run the named guest.
func withGuest(t *testing.T, sc *scenario.Scenario, guest string) *scenario.Scenario {
	t.Helper()
	elf := qemutest.Guest(t, guest)
	c := *sc
	for i := range c.Guests {
		c.Guests[i].Kernel = elf
		c.Guests[i].Symbols = elf
	}
	return &c
}

// localised returns the one instruction divergence of a run.
func localised(t *testing.T, sc *scenario.Scenario, opts lockstep.Options) compare.Divergence {
	t.Helper()
	res, err := lockstep.Run(context.Background(), sc, opts)
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	noLeftovers(t)
	ins := byKind(res, compare.KindInstruction)
	if len(ins) != 1 {
		t.Fatalf("instruction divergences %+v (notes %q), want 1", ins, res.Notes)
	}
	for _, n := range res.Notes {
		if strings.Contains(n, "trace engine failed") {
			t.Errorf("note %q: the trace engine fell back to stepping", n)
		}
	}
	return ins[0]
}

// TestTraceLocalisation checks that the trace engine localises the cpuid
// in kmain, N instructions after deep_start, and that it says so.
func TestTraceLocalisation(t *testing.T) {
	tests := []struct {
		guest    string
		min, max int
	}{
		// deep-1e3: the gdbstub path finds the cpuid at step 996.
		{"deep-1e3", 996, 996},
		{"deep-1e5", 99_000, 101_000},
	}
	for _, tt := range tests {
		t.Run(tt.guest, func(t *testing.T) {
			sc := withGuest(t, load(t, "deep.yaml"), tt.guest)
			// Progress counts the instructions compared while the traces
			// are (issue 14: the bar sat at 0% for the whole localisation).
			var mu sync.Mutex
			var traced []uint64
			d := localised(t, sc, lockstep.Options{Progress: func(p lockstep.Progress) {
				mu.Lock()
				defer mu.Unlock()
				if p.Traced > 0 {
					traced = append(traced, p.Traced)
				}
			}})
			mu.Lock()
			defer mu.Unlock()
			id := d.Instruction
			if !strings.Contains(d.Summary, "by trace") {
				t.Errorf("summary %q, want the trace engine (by trace)", d.Summary)
			}
			if id.Granularity != "instruction" || id.Bytes != [2]string{"0fa2", "0fa2"} ||
				!strings.Contains(id.Disasm[0], "cpuid") || d.PC[0].Symbol != "kmain" {
				t.Errorf("localised to %v %+v, want cpuid in kmain", d.PC, id)
			}
			if d.Step < tt.min || d.Step > tt.max {
				t.Errorf("step %d, want %d..%d", d.Step, tt.min, tt.max)
			}
			regs := map[string]bool{}
			for _, r := range id.Registers {
				regs[r.Name] = true
			}
			if !regs["rcx"] {
				t.Errorf("registers after the cpuid %v, want rcx", regs)
			}
			// deep-1e5 compares about 100,000 instructions: one report at 65,536.
			if wantN := d.Step / (1 << 16); len(traced) < wantN || !slices.IsSorted(traced) {
				t.Errorf("progress with instructions traced %v, want at least %d, increasing", traced, wantN)
			}
			t.Logf("%s", d.Summary)
		})
	}
	noLeftovers(t)
}

// TestTraceMatchesStepping checks that the trace engine and gdbstub
// stepping localise deep-1e3 to the same instruction, step and registers.
func TestTraceMatchesStepping(t *testing.T) {
	sc := load(t, "deep.yaml")
	byTrace := localised(t, sc, lockstep.Options{})
	bySteps := localised(t, sc, lockstep.Options{NoTraceEngine: true})
	sameLocalisation(t, byTrace, bySteps)
	ti, si := byTrace.Instruction, bySteps.Instruction
	if len(ti.CallPath[0]) != len(si.CallPath[0]) {
		t.Errorf("call paths: trace %v, gdbstub %v", ti.CallPath, si.CallPath)
	}
}
