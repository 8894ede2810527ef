package lockstep

// Calibration on fake targets (internal/fake), no QEMU: whole Calibrate
// calls whose guests vary from run to run as a script says.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/scenario"
)

// calFakeScenario is one guest (a non-ELF dummy kernel, addresses only)
// compared at 0x1010 on rax, rcx, rsi and eflags.
func calFakeScenario(t *testing.T) *scenario.Scenario {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k.bin"), []byte("not an ELF kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "name: fake-cal\ntimeout: 10s\nguests:\n  defaults: {kernel: k.bin}\n  a: {label: good}\n  b: {label: bad}\n" +
		"compare: {registers: [rax, rcx, rsi, eflags]}\nsync:\n  - break: \"0x1010\"\nexpect: identical\n"
	sc, err := scenario.Parse(filepath.Join(dir, "fake.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// issueProgram is run n (from 1) of a calibration side, on copy c (0 or
// 1): the guest of issue 15. rcx and rsi differ between the copies in
// every run, eflags.PF from run 2 on, eflags.AF from run 3 on, and rax
// (0x2a vs 0x2b) only in run 5.
func issueProgram(n, c int) fake.Program {
	v := uint64(c)
	flags := uint64(0x2)
	if c == 1 && n >= 2 {
		flags |= 0x4 // PF
	}
	if c == 1 && n >= 3 {
		flags |= 0x10 // AF
	}
	rax := uint64(0x2a)
	if c == 1 && n == 5 {
		rax = 0x2b
	}
	p := fake.Program{States: fake.Linear(0x1000, 64), End: fake.Exit}
	i := fake.Find(p.States, 0x1008)
	p.States[i].Regs = map[string]uint64{"rax": rax, "rcx": 0x100 + v, "rsi": 0x200 + v, "eflags": flags}
	return p
}

// TestCalibrateFindsLateNoise reproduces issue 15 on fake targets: three
// fixed runs learn rcx, rsi, eflags.PF and eflags.AF and miss rax, which
// varies in run 5 only, and say they did not settle; adaptive runs keep
// going while noise appears, find rax and settle after run 8. (The real
// TSC guest varies the same things in every run, so it cannot show this.)
func TestCalibrateFindsLateNoise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    CalibrateOptions
		runs    int // per side
		regs    []string
		stable  int
		settled bool
	}{
		{name: "fixed 3 runs", opts: CalibrateOptions{Runs: 3}, runs: 3,
			regs: []string{"rcx", "rsi", "eflags.PF", "eflags.AF"}, stable: 0},
		{name: "adaptive", runs: 8,
			regs: []string{"rcx", "rsi", "eflags.PF", "eflags.AF", "rax"}, stable: 3, settled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := calFakeScenario(t)
			// Launches count on across both calibration sides (and the
			// icount probe): run n of a side is launch n-1 modulo the
			// runs a side takes, plus one for the probe.
			period := tt.runs + 1
			l := &fake.Launcher{Dir: t.TempDir(), Program: func(c, launch int) fake.Program {
				return issueProgram(launch%period+1, c)
			}}
			to := fake.Timeouts()
			opts := tt.opts
			opts.Options = Options{RunDir: t.TempDir(), NoTraceEngine: true, launcher: l, timeouts: &to}
			var news []int
			opts.OnRun = func(r CalibrationRun) {
				if r.Side == 0 && r.New {
					news = append(news, r.Run)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cal, err := Calibrate(ctx, sc, opts)
			if err != nil {
				t.Fatalf("calibrate: %v", err)
			}
			for _, sd := range cal.Sides {
				if sd.Runs != tt.runs || sd.Stable != tt.stable || sd.Settled != tt.settled {
					t.Errorf("side %s: runs %d stable %d settled %v, want %d %d %v",
						sd.Side, sd.Runs, sd.Stable, sd.Settled, tt.runs, tt.stable, tt.settled)
				}
				// The fake ignores -icount: nothing goes away under it, and
				// rax, which varied in 1 of 8 runs, not varying in the
				// probe's one run says nothing.
				p := sd.Icount
				if p == nil || p.FromTime() || !slices.Equal(p.Kept, []string{"rcx", "rsi", "eflags.PF", "eflags.AF"}) ||
					!slices.Equal(p.Unsure, tt.regs[4:]) {
					t.Errorf("side %s: icount probe %+v, want all kept but a rare rax", sd.Side, p)
				}
			}
			if !slices.Equal(cal.Noise.Registers, tt.regs) {
				t.Errorf("learned %v, want %v", cal.Noise.Registers, tt.regs)
			}
			if want := []int{1, 2, 3}; tt.settled {
				want = append(want, 5)
				if !slices.Equal(news, want) {
					t.Errorf("side a found new noise in runs %v, want %v", news, want)
				}
			}
			if cal.FromTime() || len(cal.Advice()) != 0 {
				t.Errorf("advice %q, want none", cal.Advice())
			}
		})
	}
}
