package lockstep

import (
	"context"
	"github.com/lockstep-dev/lockstep/compare"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// loadTSC builds the TSC guests if needed and loads a tsc*.yaml scenario.
func loadTSC(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "tsc")
	qemutest.Guest(t, "tsc-bad")
	sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func runTSC(t *testing.T, sc *scenario.Scenario) *Result {
	t.Helper()
	res, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	noQEMULeft(t)
	return res
}

func noQEMULeft(t *testing.T) {
	t.Helper()
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}

// divergenceNames returns "kind:name" for each divergence, split by whether
// it was marked as noise.
// divergenceNames names the divergences found at sync points; what
// localisation adds (instruction divergences, here from boot, since the
// first sync point differs) is left out.
func divergenceNames(res *Result) (real, noise []string) {
	for _, d := range res.Divergences {
		if d.Kind == compare.KindInstruction {
			continue
		}
		n := string(d.Kind)
		switch {
		case d.Register != nil:
			n += ":" + d.Register.Name
		case d.Memory != nil:
			n += ":" + d.Memory.Name
		}
		if d.Noise {
			noise = append(noise, n)
		} else {
			real = append(real, n)
		}
	}
	slices.Sort(real)
	slices.Sort(noise)
	return real, noise
}

func memoryNoiseFor(n scenario.Noise, sym string) (scenario.NoiseMemory, bool) {
	for _, m := range n.Memory {
		if m.Symbol == sym {
			return m, true
		}
	}
	return scenario.NoiseMemory{}, false
}

// TestCalibrateTSC is the acceptance test of calibration on the TSC guest:
// a false divergence without calibration, none with it, a real regression
// that still fails, and a --write round trip.
func TestCalibrateTSC(t *testing.T) {
	sc := loadTSC(t, "tsc.yaml")

	t.Run("uncalibrated diverges", func(t *testing.T) {
		res := runTSC(t, sc)
		if res.Outcome != OutcomeDiverged || res.Passed {
			t.Fatalf("outcome %s passed=%v, want diverged and failed", res.Outcome, res.Passed)
		}
		real, noise := divergenceNames(res)
		want := []string{"memory:tsc_sample", "register:rdi"}
		if !slices.Equal(real, want) || len(noise) != 0 {
			t.Errorf("divergences %v (noise %v), want %v and no noise", real, noise, want)
		}
	})

	var runs, news []int
	start := time.Now()
	cal, err := Calibrate(context.Background(), sc, CalibrateOptions{
		OnRun: func(r CalibrationRun) {
			runs = append(runs, r.Side*10+r.Run)
			if r.New {
				news = append(news, r.Side*10+r.Run)
			}
		}})
	if err != nil {
		t.Fatalf("calibrate: %v", err)
	}
	t.Logf("calibrated in %v: runs %v, new noise in %v", time.Since(start).Round(time.Millisecond), runs, news)
	noQEMULeft(t)

	t.Run("learns rdi and tsc_sample, settles after 4 runs", func(t *testing.T) {
		// rdi and tsc_sample vary in every run: run 1 finds them, runs 2
		// to 4 find nothing new, and each side settles at its fourth run.
		if want := []int{1, 2, 3, 4, 11, 12, 13, 14}; !slices.Equal(runs, want) {
			t.Errorf("OnRun calls %v, want %v", runs, want)
		}
		if want := []int{1, 11}; !slices.Equal(news, want) {
			t.Errorf("new noise in runs %v, want %v", news, want)
		}
		if cal.Unstable() || cal.Err() != nil {
			t.Errorf("unstable: %v", cal.Err())
		}
		if !cal.Settled() || !cal.Plan.Adaptive() {
			t.Errorf("settled %v adaptive %v, want both", cal.Settled(), cal.Plan.Adaptive())
		}
		for i, sd := range cal.Sides {
			if sd.Side != scenario.SideNames[i] || sd.Runs != 4 || sd.Varied != 4 || sd.Stable != 3 || !sd.Settled {
				t.Errorf("side %d: %s runs %d varied %d stable %d settled %v, want %s 4 4 3 true",
					i, sd.Side, sd.Runs, sd.Varied, sd.Stable, sd.Settled, scenario.SideNames[i])
			}
			for _, it := range sd.Items {
				if it.Runs != 4 || it.First != 1 || it.Sync != "tsc_done" {
					t.Errorf("side %s item %s %s: %d runs from run %d at %s, want 4 from 1 at tsc_done",
						sd.Side, it.Kind, it.Rule, it.Runs, it.First, it.Sync)
				}
			}
		}
		if !slices.Equal(cal.Noise.Registers, []string{"rdi"}) {
			t.Errorf("registers %v, want [rdi] (rsi is deterministic)", cal.Noise.Registers)
		}
		if len(cal.Noise.CallPath) != 0 {
			t.Errorf("callpath %v, want none", cal.Noise.CallPath)
		}
		m, ok := memoryNoiseFor(cal.Noise, "tsc_sample")
		if !ok {
			t.Fatalf("no tsc_sample in %+v", cal.Noise.Memory)
		}
		// The low half of the TSC always differs between runs; the high
		// half only when a run takes 2^32 cycles to get there.
		for _, o := range []uint64{0, 1, 2, 3, 4, 5, 6, 7} {
			if !slices.Contains(m.Offsets, o) {
				t.Errorf("tsc_sample offsets %v lack %d", m.Offsets, o)
			}
		}
		if len(m.Offsets) == 0 || slices.Max(m.Offsets) > 7 {
			t.Errorf("tsc_sample offsets %v, want within the 8-byte symbol", m.Offsets)
		}
		if _, ok := memoryNoiseFor(cal.Noise, "tsc_value"); ok || len(cal.Noise.Memory) != 1 {
			t.Errorf("memory noise %+v, want only tsc_sample", cal.Noise.Memory)
		}
	})

	t.Run("the noise comes from time", func(t *testing.T) {
		// Under determinism.icount both copies read the same TSC.
		for _, sd := range cal.Sides {
			p := sd.Icount
			if p == nil {
				t.Errorf("side %s: no icount probe", sd.Side)
				continue
			}
			if !slices.Equal(p.Gone, []string{"rdi", "tsc_sample"}) || len(p.Kept) != 0 || p.Other != 0 || p.Runs != 1 {
				t.Errorf("side %s: icount probe %+v, want rdi and tsc_sample gone in 1 run", sd.Side, p)
			}
		}
		if !cal.Icountable || !cal.FromTime() || !slices.Equal(cal.Advice(), []string{IcountHint}) {
			t.Errorf("icountable %v from time %v advice %q, want true true [IcountHint]", cal.Icountable, cal.FromTime(), cal.Advice())
		}
	})

	t.Run("calibrated run is identical", func(t *testing.T) {
		c := *sc
		ApplyCalibration(&c, cal)
		res := runTSC(t, &c)
		if res.Outcome != OutcomeIdentical || !res.Passed {
			t.Fatalf("outcome %s passed=%v, want identical and passed: %+v", res.Outcome, res.Passed, res.Divergences)
		}
		real, noise := divergenceNames(res)
		if want := []string{"memory:tsc_sample", "register:rdi"}; len(real) != 0 || !slices.Equal(noise, want) {
			t.Errorf("divergences %v, noise %v; want none and %v", real, noise, want)
		}
		if res.Syncs[0].Status != "noise" {
			t.Errorf("sync status %q, want noise", res.Syncs[0].Status)
		}
	})

	t.Run("regression still fails", func(t *testing.T) {
		rs := loadTSC(t, "tsc-regress.yaml")
		ApplyCalibration(rs, cal)
		res := runTSC(t, rs)
		if res.Outcome != OutcomeDiverged || res.Passed {
			t.Fatalf("outcome %s passed=%v, want diverged and failed", res.Outcome, res.Passed)
		}
		real, noise := divergenceNames(res)
		if want := []string{"memory:tsc_value", "register:rsi"}; !slices.Equal(real, want) {
			t.Errorf("real divergences %v, want %v", real, want)
		}
		if want := []string{"memory:tsc_sample", "register:rdi"}; !slices.Equal(noise, want) {
			t.Errorf("noise divergences %v, want %v", noise, want)
		}
	})

	t.Run("write round trip", func(t *testing.T) {
		path := tempScenario(t, sc.File)
		if err := scenario.AddNoise(path, cal.Noise, "learned by lockstep calibrate on 2025-01-01: 2 runs per side"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "# learned by lockstep calibrate on 2025-01-01: 2 runs per side") {
			t.Errorf("comment missing from\n%s", data)
		}
		back, err := scenario.Load(path)
		if err != nil {
			t.Fatalf("written scenario does not load: %v\n%s", err, data)
		}
		if got := stripPos(back.Noise); !noiseEqual(got, cal.Noise) {
			t.Errorf("loaded noise %+v, want %+v", got, cal.Noise)
		}
		res := runTSC(t, back)
		if res.Outcome != OutcomeIdentical || !res.Passed {
			t.Errorf("written scenario: outcome %s passed=%v, want identical", res.Outcome, res.Passed)
		}
	})
}

// tempScenario copies a scenario into a temporary directory, with its
// kernel paths made absolute so they still resolve.
func tempScenario(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	build := filepath.Join(qemutest.Root(t), "testdata", "guests", "build")
	text := strings.ReplaceAll(string(data), "../guests/build", build)
	path := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func stripPos(n scenario.Noise) scenario.Noise {
	n.Memory = slices.Clone(n.Memory)
	for i := range n.Memory {
		n.Memory[i].Pos = scenario.Position{}
	}
	return n
}

func noiseEqual(a, b scenario.Noise) bool {
	return slices.Equal(a.Registers, b.Registers) && slices.Equal(a.CallPath, b.CallPath) &&
		slices.EqualFunc(a.Memory, b.Memory, func(x, y scenario.NoiseMemory) bool {
			return x.Symbol == y.Symbol && x.HasAddress == y.HasAddress && x.Address == y.Address &&
				slices.Equal(x.Offsets, y.Offsets)
		})
}

// TestCalibrateIcountMakesTSCDeterministic checks what QEMU does with
// determinism.icount "shift=0,sleep=off": under TCG the virtual clock, and
// with it rdtsc, advances with executed instructions only, so identical
// runs read the same TSC and there is nothing to learn. (Observed on QEMU
// 7.2: true.)
func TestCalibrateIcountMakesTSCDeterministic(t *testing.T) {
	sc := loadTSC(t, "tsc-icount.yaml")
	if sc.Determinism.Icount != "shift=0,sleep=off" {
		t.Fatalf("icount %q, want shift=0,sleep=off", sc.Determinism.Icount)
	}
	cal, err := Calibrate(context.Background(), sc, CalibrateOptions{Runs: 1})
	if err != nil {
		t.Fatalf("calibrate: %v", err)
	}
	noQEMULeft(t)
	if !cal.Noise.IsZero() || cal.Unstable() {
		t.Errorf("learned %+v (unstable: %v), want nothing", cal.Noise, cal.Err())
	}
	// icount is set already: nothing to try or suggest. One run is no
	// evidence of stability.
	if cal.Icountable || cal.FromTime() || len(cal.Advice()) != 0 || cal.Settled() {
		t.Errorf("icountable %v from time %v advice %q settled %v, want none", cal.Icountable, cal.FromTime(), cal.Advice(), cal.Settled())
	}
	for _, sd := range cal.Sides {
		if sd.Varied != 0 || sd.Icount != nil {
			t.Errorf("side %s: %d/%d runs varied, icount probe %+v; want 0, none", sd.Side, sd.Varied, sd.Runs, sd.Icount)
		}
		if !strings.Contains(sd.Label, "run-") {
			t.Errorf("side %s label %q, want the scenario's", sd.Side, sd.Label)
		}
	}
}
