package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/calibrate")

// calSide is a side for the golden calibrations: runs, stable, settled and
// items.
func calSide(side, label string, runs, stable int, settled bool, items ...lockstep.NoiseItem) lockstep.SideCalibration {
	sd := lockstep.SideCalibration{Side: side, Label: label, Runs: runs, Stable: stable, Settled: settled, Items: items}
	for _, it := range items {
		sd.Varied = max(sd.Varied, it.Runs)
		switch it.Kind {
		case compare.KindRegister:
			sd.Noise.Registers = append(sd.Noise.Registers, it.Rule)
		case compare.KindMemory:
			sd.Noise.Memory = append(sd.Noise.Memory, scenario.NoiseMemory{Symbol: it.Rule, Offsets: it.Offsets})
		}
	}
	return sd
}

func reg(rule string, runs, first int) lockstep.NoiseItem {
	return lockstep.NoiseItem{Kind: compare.KindRegister, Rule: rule, Sync: "tsc_done", Runs: runs, First: first}
}

// goldenCalibrations are the shapes printCalibration renders: settled
// with noise from time, unsettled at the bound, a fixed count that did not
// settle with an unstable item under KVM, nothing varying, and an icount
// probe that removed only part of the noise.
func goldenCalibrations() map[string]*lockstep.Calibration {
	adaptive := lockstep.CalibrationPlan{MinRuns: 3, MaxRuns: 12, Settle: 3}
	tsc := func() lockstep.SideCalibration {
		sd := calSide("a", "run-1", 4, 3, true, reg("rdi", 4, 1),
			lockstep.NoiseItem{Kind: compare.KindMemory, Rule: "tsc_sample", Offsets: []uint64{0, 1, 2, 3, 4, 5, 6, 7}, Sync: "tsc_done", Runs: 4, First: 1})
		sd.Icount = &lockstep.IcountProbe{Icount: lockstep.IcountOption, Runs: 1, Gone: []string{"rdi", "tsc_sample"}}
		return sd
	}
	out := map[string]*lockstep.Calibration{}

	c := &lockstep.Calibration{Scenario: "tsc", Plan: adaptive, Icountable: true}
	c.Sides[0], c.Sides[1] = tsc(), tsc()
	c.Sides[1].Side, c.Sides[1].Label = "b", "run-2"
	c.Noise = lockstep.MergeNoise(c.Sides[0].Noise, c.Sides[1].Noise)
	out["time"] = c

	c = &lockstep.Calibration{Scenario: "busy", Plan: adaptive, Icountable: true}
	c.Sides[0] = calSide("a", "good", 12, 0, false, reg("rcx", 12, 1), reg("rsi", 11, 2), reg("eflags.PF", 3, 7), reg("rax", 1, 12))
	c.Sides[0].Icount = &lockstep.IcountProbe{Icount: lockstep.IcountOption, Runs: 1, Gone: []string{"rcx"}, Kept: []string{"rsi"},
		Unsure: []string{"eflags.PF", "rax"}, Other: 1}
	c.Sides[1] = calSide("b", "bad", 12, 2, false, reg("rcx", 12, 1), reg("rdx", 2, 10))
	c.Sides[1].Icount = &lockstep.IcountProbe{Icount: lockstep.IcountOption, Runs: 1, Kept: []string{"rcx"}, Unsure: []string{"rdx"}}
	c.Noise = lockstep.MergeNoise(c.Sides[0].Noise, c.Sides[1].Noise)
	out["bound"] = c

	c = &lockstep.Calibration{Scenario: "kvm", Plan: lockstep.CalibrationPlan{Runs: 3, Settle: 3}}
	c.Sides[0] = calSide("a", "tcg", 3, 3, true)
	c.Sides[1] = calSide("b", "kvm", 3, 1, false, reg("rdi", 3, 1))
	c.Sides[1].Unstable = []lockstep.UnstableItem{{Kind: compare.KindArrival, Sync: "tick", Summary: "b#2 timed out", Runs: 1, First: 2}}
	c.Sides[1].Notes = []string{"determinism.sstep notimer is not supported under KVM"}
	c.Noise = c.Sides[1].Noise
	out["fixed-unstable-kvm"] = c

	c = &lockstep.Calibration{Scenario: "quiet", Plan: adaptive, Icountable: true}
	c.Sides[0], c.Sides[1] = calSide("a", "x", 3, 3, true), calSide("b", "y", 3, 3, true)
	out["nothing"] = c
	return out
}

// TestPrintCalibration compares printCalibration's output with the golden
// files in testdata/calibrate (go test -run TestPrintCalibration -update
// rewrites them).
func TestPrintCalibration(t *testing.T) {
	t.Parallel()
	for name, cal := range goldenCalibrations() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := printCalibration(&b, cal); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "calibrate", name+".txt")
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/lockstep -run TestPrintCalibration -update)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from the golden file (run with -update and review the diff)\ngot:\n%s", path, got)
			}
		})
	}
}

// TestCalibrationComment checks the --write comment: the runs per side,
// and "not settled" when a side did not settle.
func TestCalibrationComment(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cals := goldenCalibrations()
	for name, want := range map[string]string{
		"time":               "learned by lockstep calibrate on 2026-12-01: 4 runs per side",
		"bound":              "learned by lockstep calibrate on 2026-12-01: 12 runs per side, not settled",
		"fixed-unstable-kvm": "learned by lockstep calibrate on 2026-12-01: 3 runs per side, not settled",
	} {
		if got := calibrationComment(cals[name], day); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	c := cals["time"]
	c.Sides[1].Runs = 7
	if got, want := calibrationComment(c, day), "learned by lockstep calibrate on 2026-12-01: 4 runs of a, 7 of b"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestCalibrateUsage checks that inconsistent run bounds are usage errors
// (status 2), found before any QEMU starts.
func TestCalibrateUsage(t *testing.T) {
	path := scenarioPath(t, "tsc.yaml")
	checkCLI(t, []cliCase{
		{"runs and max-runs", []string{"calibrate", "--runs", "3", "--max-runs", "5", path}, 2, nil, []string{"runs", "max-runs"}},
		{"min above max", []string{"calibrate", "--min-runs", "6", "--max-runs", "5", path}, 2, nil, []string{"min runs 6 exceeds max runs 5"}},
		{"negative settle", []string{"calibrate", "--settle", "-1", path}, 2, nil, []string{"settle must be positive"}},
		{"run --calibrate 0 is off, negative is not", []string{"run", "--calibrate", "-2", path}, 2, nil, []string{"--calibrate must be at least 1"}},
	})
}

// TestCalibrateCLI runs `lockstep calibrate` on the TSC guest: adaptive
// runs settle after 4 runs per side, icount removes the noise and is
// suggested; with exactly 3 runs the sides do not settle, which `run
// --calibrate 3` warns about.
func TestCalibrateCLI(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "tsc")
	path := scenarioPath(t, "tsc.yaml")
	checkCLI(t, []cliCase{
		{"adaptive", []string{"calibrate", path}, 0,
			[]string{"until 3 runs in a row find nothing new (3 to 12 runs per side)", "settled: nothing new in the last 3 of 4 runs",
				"did not vary (from time): rdi, tsc_sample", "advice: " + lockstep.IcountHint, "registers: [rdi]"},
			[]string{"side a run 4 (of 3 to 12): 2 differences, nothing new (3 in a row)", "side b run 1 (of 3 to 12): 2 differences, new noise"}},
		{"run --calibrate", []string{"run", "--calibrate", "3", path}, 0, []string{"IDENTICAL"},
			[]string{"side b run 3/3", "warning: side a: NOT SETTLED: a fixed 3 runs, nothing new in the last 2 (3 needed): the noise may be incomplete",
				"warning: side b: NOT SETTLED"}},
	})
}
