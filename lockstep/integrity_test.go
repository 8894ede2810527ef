package lockstep_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/reports"
	"github.com/lockstep-dev/lockstep/scenario"
)

// loadGuests loads a scenario after building the guests it names.
func loadGuests(t *testing.T, name string, guests ...string) *scenario.Scenario {
	t.Helper()
	for _, g := range guests {
		qemutest.Guest(t, g)
	}
	return load(t, name)
}

// useBuild makes side b run (and symbolise) another build of the guest,
// which puts the run in the different-builds mode.
func useBuild(t *testing.T, sc *scenario.Scenario, guest string) {
	t.Helper()
	elf := qemutest.Guest(t, guest)
	sc.Guests[1].Kernel, sc.Guests[1].Symbols = elf, elf
	if sc.SameBinary() {
		t.Fatalf("side b on %s still counts as the same binary", guest)
	}
}

// runIn runs sc under its own run directory and checks that no QEMU of
// that run is left, whatever Run returned.
func runIn(t *testing.T, sc *scenario.Scenario) (*lockstep.Result, error) {
	t.Helper()
	runDir := qemutest.ShortDir(t)
	t.Cleanup(func() { qemutest.Release(runDir) })
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: runDir})
	qemutest.NoQEMUUnder(t, runDir)
	if res == nil {
		t.Fatalf("Run returned a nil Result with %v", err)
	}
	return res, err
}

// mustRun is runIn for runs that must not fail: a guest exit or a missed
// sync point is a finding about the guests, not an infrastructure error.
func mustRun(t *testing.T, sc *scenario.Scenario) *lockstep.Result {
	t.Helper()
	res, err := runIn(t, sc)
	if err != nil {
		t.Fatalf("run %s: %v (outcome %s)", sc.Name, err, res.Outcome)
	}
	return res
}

// reachedBoth counts the sync points both sides reached.
func reachedBoth(res *lockstep.Result) int {
	n := 0
	for _, s := range res.Syncs {
		if s.Reached[0] && s.Reached[1] {
			n++
		}
	}
	return n
}

// checkSyncStatuses checks that every sync point's status is one
// Result documents and agrees with what it says was reached: "match",
// "noise" and "diverge" for a point both sides reached, "unreached" for
// one at least one side never got to, "skipped" for one neither side was
// driven to. It also checks the count of points both sides reached and
// that the text summary says the same.
func checkSyncStatuses(t *testing.T, res *lockstep.Result, wantReached int) {
	t.Helper()
	for _, s := range res.Syncs {
		both := s.Reached[0] && s.Reached[1]
		switch s.Status {
		case "match", "noise", "diverge":
			if !both {
				t.Errorf("sync %d (%s): status %s, but reached %v", s.Index+1, s.Break, s.Status, s.Reached)
			}
		case "unreached":
			if both {
				t.Errorf("sync %d (%s): status unreached, but both sides reached it", s.Index+1, s.Break)
			}
		case "skipped":
			if s.Reached[0] || s.Reached[1] {
				t.Errorf("sync %d (%s): status skipped, but reached %v", s.Index+1, s.Break, s.Reached)
			}
		default:
			t.Errorf("sync %d (%s): status %q is none of match, noise, diverge, unreached, skipped", s.Index+1, s.Break, s.Status)
		}
	}
	if n := reachedBoth(res); n != wantReached {
		t.Errorf("%d sync points reached by both sides, want %d: %+v", n, wantReached, res.Syncs)
	}
	want := fmt.Sprintf("%d/%d sync points", wantReached, len(res.Syncs))
	if text := renderText(t, res); !strings.Contains(text, want) {
		t.Errorf("text summary does not say %q:\n%s", want, text)
	}
}

func renderText(t *testing.T, res *lockstep.Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := reports.Render(&b, reports.FormatText, res, reports.Options{}); err != nil {
		t.Fatalf("render text: %v", err)
	}
	return b.String()
}

func renderJUnit(t *testing.T, res *lockstep.Result) reports.JUnitSuites {
	t.Helper()
	var b bytes.Buffer
	if err := reports.Render(&b, reports.FormatJUnit, res, reports.Options{}); err != nil {
		t.Fatalf("render junit: %v", err)
	}
	var js reports.JUnitSuites
	if err := xml.Unmarshal(b.Bytes(), &js); err != nil {
		t.Fatalf("decode junit: %v\n%s", err, b.String())
	}
	return js
}

// TestNeverReachedSyncFails runs demo-good against itself with a sync point
// on path_c, which it never executes. Both sides agree, but a sync point
// the scenario requires was never reached: that cannot be an identical
// pass. The result, the text verdict and the JUnit report must all say
// the run failed.
func TestNeverReachedSyncFails(t *testing.T) {
	t.Parallel()
	sc := load(t, "never-reached.yaml")
	res := mustRun(t, sc)
	k := syncIndex(t, sc, "path_c")
	if res.Passed {
		t.Errorf("outcome %s passed with expect: identical although sync %d (path_c) was never reached (notes %q)",
			res.Outcome, k+1, res.Notes)
	}
	if s := res.Syncs[k]; s.Status != "unreached" || s.Reached != [2]bool{} {
		t.Errorf("sync path_c: status %s reached %v, want unreached by either side", s.Status, s.Reached)
	}
	if s := res.Syncs[0]; s.Status != "match" {
		t.Errorf("sync kmain: status %s, want match", s.Status)
	}
	checkSyncStatuses(t, res, 1)

	text := renderText(t, res)
	head, _, _ := strings.Cut(text, "\n")
	if strings.Contains(head, "PASS") || !strings.Contains(head, "FAIL") {
		t.Errorf("text verdict %q, want FAIL", head)
	}
	js := renderJUnit(t, res)
	failed := false
	for _, s := range js.Suites {
		for _, c := range s.Cases {
			if strings.Contains(c.Name, "path_c") && c.Failure != nil {
				failed = true
			}
		}
	}
	if js.Failures == 0 || !failed {
		t.Errorf("JUnit: %d failures, path_c failed %v; want the unreached sync point as a failure", js.Failures, failed)
	}
}

// TestExitInsideStepWindow steps both sides after window_start; side a's
// guest exits at the 6th instruction while side b's runs on. That is an
// exit divergence at window_start (the guests ended differently), not a
// lost gdbstub; and late_point, after a's exit, is not reached. With one
// binary the window compares instruction by instruction, between builds
// by function entries: both must see the exit.
func TestExitInsideStepWindow(t *testing.T) {
	for _, builds := range []bool{false, true} {
		name := "same binary"
		if builds {
			name = "different builds"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc := loadGuests(t, "stepexit-one.yaml", "stepexit")
			if builds {
				useBuild(t, sc, "stepexit-pad")
			}
			res := mustRun(t, sc)
			win, late := syncIndex(t, sc, "window_start"), syncIndex(t, sc, "late_point")
			if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
				t.Errorf("outcome %s passed=%v, want diverged and passed", res.Outcome, res.Passed)
			}
			var exits []compare.Divergence
			for _, d := range byKind(res, compare.KindExit) {
				if d.Sync == win {
					exits = append(exits, d)
				}
			}
			if len(exits) != 1 {
				t.Fatalf("exit divergences at window_start: %+v, want 1 (all: %+v)", exits, res.Divergences)
			}
			e := exits[0].Exit
			if e == nil || e.State[0] != "exited" || e.State[1] == "exited" || e.ExitCode[0] == nil || *e.ExitCode[0] != 1 {
				t.Errorf("exit divergence %+v (%s), want a exited with status 1 and b still running", e, exits[0].Summary)
			}
			if ins := byKind(res, compare.KindInstruction); len(ins) > 0 {
				t.Errorf("instruction divergences %+v: the guests execute the same code until a exits", ins)
			}
			if s := res.Syncs[win]; s.Status != "diverge" {
				t.Errorf("sync window_start: status %s, want diverge", s.Status)
			}
			if s := res.Syncs[late]; s.Reached[0] || (s.Status != "unreached" && s.Status != "skipped") {
				t.Errorf("sync late_point: status %s reached %v; side a had exited, want not reached", s.Status, s.Reached)
			}
			checkSyncStatuses(t, res, 1)
		})
	}
}

// TestStepWindowBothExit runs stepexit against itself (and against the
// other build): both guests exit at the same instruction of the step
// window. The window just ends there: no error, no divergence, the sync
// point matched, both sides exited with status 1.
func TestStepWindowBothExit(t *testing.T) {
	for _, builds := range []bool{false, true} {
		name := "same binary"
		if builds {
			name = "different builds"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc := loadGuests(t, "stepexit-both.yaml", "stepexit")
			if builds {
				useBuild(t, sc, "stepexit-pad")
			}
			res := mustRun(t, sc)
			if res.Outcome != lockstep.OutcomeIdentical || !res.Passed || len(res.Divergences) != 0 {
				t.Errorf("outcome %s passed=%v divergences %+v, want identical", res.Outcome, res.Passed, res.Divergences)
			}
			s := res.Syncs[0]
			window := sc.Sync[0].Step
			if s.Status != "match" || s.Steps <= 0 || s.Steps > window {
				t.Errorf("sync window_start: status %s, %d steps; want match within the %d-step window", s.Status, s.Steps, window)
			}
			if !builds && s.Steps >= window {
				// One binary is stepped in lockstep: the window ends at the
				// exit (the 6th instruction), not at its length.
				t.Errorf("window of %d steps reported %d steps, want it ended at the exit", window, s.Steps)
			}
			for i, sd := range res.Sides {
				if sd.State != "exited" || sd.ExitCode == nil || *sd.ExitCode != 1 {
					t.Errorf("side %d ended %s %v, want exited with status 1", i, sd.State, sd.ExitCode)
				}
			}
			checkSyncStatuses(t, res, 1)
		})
	}
}

// TestEarlyExitSyncStatuses checks the statuses of demo-exit, where side b
// exits before report: kmain matched, report not reached by b.
func TestEarlyExitSyncStatuses(t *testing.T) {
	t.Parallel()
	sc := loadGuests(t, "demo-exit.yaml", "demo-exit")
	res := mustRun(t, sc)
	k := syncIndex(t, sc, "report")
	if s := res.Syncs[k]; s.Reached[1] || s.Status != "unreached" {
		t.Errorf("sync report: status %s reached %v, want unreached by b", s.Status, s.Reached)
	}
	checkSyncStatuses(t, res, 1)
}
