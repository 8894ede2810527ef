package lockstep_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// sideSignal sends a signal to one side's QEMU while the run waits for
// that side to reach sync point sync (1-based): once Progress reports the
// point as "running" and the side's serial log shows marker, which the
// guest prints only after it has been resumed towards that point.
type sideSignal struct {
	runDir, side, marker string
	sync                 int
	sig                  syscall.Signal

	armed chan struct{}
	arm   sync.Once
	done  chan struct{}
	pid   int   // the process signalled; 0 if none
	err   error // why no process was signalled
}

func newSideSignal(runDir, side string, sync int, marker string, sig syscall.Signal) *sideSignal {
	return &sideSignal{runDir: runDir, side: side, sync: sync, marker: marker, sig: sig,
		armed: make(chan struct{}), done: make(chan struct{})}
}

// progress is the run's Options.Progress: it arms the signal once the run
// starts waiting for the sync point. It never blocks the engine.
func (s *sideSignal) progress(p lockstep.Progress) {
	if p.Phase == "running" && p.Sync == s.sync {
		s.arm.Do(func() { close(s.armed) })
	}
}

// start polls for the process, bounded by ctx, and signals it once.
func (s *sideSignal) start(ctx context.Context) {
	go func() {
		defer close(s.done)
		select {
		case <-s.armed:
		case <-ctx.Done():
			s.err = fmt.Errorf("sync point %d never reported running: %w", s.sync, ctx.Err())
			return
		}
		s.pid, s.err = qemutest.SignalWhenSerial(ctx, s.runDir, s.side, s.marker, s.sig)
	}()
}

// runSignalled runs sc under a short run directory, signals side b's QEMU
// with sig while the run waits for sync point 2 (demo-hang: a reached
// report, b spins in hang_here after printing "demo: hang"), and returns
// what Run returned. The test's own deadline is only a safety net: Run
// must return by itself, within the scenario's bound.
func runSignalled(t *testing.T, sc *scenario.Scenario, sig syscall.Signal) (*lockstep.Result, error) {
	t.Helper()
	runDir := qemutest.ShortDir(t)
	t.Cleanup(func() { qemutest.Release(runDir) })
	ctx, cancel := context.WithTimeout(context.Background(), sc.Timeout+30*time.Second)
	defer cancel()
	ss := newSideSignal(runDir, "b", 2, "demo: hang", sig)
	sctx, scancel := context.WithCancel(ctx)
	ss.start(sctx)
	res, err := lockstep.Run(ctx, sc, lockstep.Options{RunDir: runDir, Progress: ss.progress})
	scancel()
	<-ss.done
	if ctx.Err() != nil {
		t.Errorf("Run returned only when the test's safety deadline ended it (scenario timeout %s)", sc.Timeout)
	}
	qemutest.NoQEMUUnder(t, runDir)
	if ss.pid == 0 {
		t.Fatalf("side b's QEMU was never sent %v (the run returned %v, %+v): %v", sig, err, res, ss.err)
	}
	if res == nil {
		t.Fatalf("Run returned a nil Result with %v", err)
	}
	return res, err
}

// namesSideB reports whether a message names side b of demo-hang.
func namesSideB(msg string) bool {
	return strings.Contains(msg, "guest b") || strings.Contains(msg, "b (hang)")
}

// checkInfraFailure checks the rules for a side whose QEMU was lost while
// the run waited: an infrastructure error, outcome error, never a pass,
// never a finding about the guests.
func checkInfraFailure(t *testing.T, res *lockstep.Result, err error, wantSideB bool) {
	t.Helper()
	if !errors.Is(err, lockstep.ErrInfrastructure) {
		t.Errorf("Run returned err %v, want one wrapping ErrInfrastructure (outcome %s, passed %v, divergences %+v)",
			err, res.Outcome, res.Passed, res.Divergences)
	}
	if res.Outcome != lockstep.OutcomeError || res.Passed {
		t.Errorf("outcome %s passed=%v, want error and not passed", res.Outcome, res.Passed)
	}
	if arr := byKind(res, compare.KindArrival); len(arr) > 0 {
		t.Errorf("the lost guest was reported as an arrival divergence: %s", arr[0].Summary)
	}
	if s := res.Syncs[0]; s.Status != "match" || s.Reached != [2]bool{true, true} {
		t.Errorf("sync 1 (kmain), matched before the guest was lost: status %s reached %v, want match", s.Status, s.Reached)
	}
	if wantSideB && err != nil && !namesSideB(err.Error()) && !namesSideB(res.Error) {
		t.Errorf("error %q (Result.Error %q) does not name side b", err, res.Error)
	}
}

// TestSideBKilledWhileWaiting SIGKILLs side b's QEMU while the run waits
// for it at a sync point. A lost guest says nothing about how the guests
// behave: whatever the scenario expects, the run is an infrastructure
// failure naming side b, never an arrival divergence (which would pass
// expect: diverge) or a mismatch (exit 1 for expect: identical).
func TestSideBKilledWhileWaiting(t *testing.T) {
	for _, expect := range []scenario.Expect{scenario.ExpectDiverge, scenario.ExpectIdentical} {
		t.Run("expect "+string(expect), func(t *testing.T) {
			t.Parallel()
			sc := load(t, "demo-hang.yaml")
			sc.Expect = expect
			res, err := runSignalled(t, sc, syscall.SIGKILL)
			checkInfraFailure(t, res, err, true)
		})
	}
}

// TestSideBStoppedWhileWaiting SIGSTOPs side b's QEMU while the run waits
// for it: its gdbstub can no longer answer, so when the sync point's bound
// runs out the run must end as an infrastructure failure, not as a guest
// that "did not arrive" with a PC that could not be read.
func TestSideBStoppedWhileWaiting(t *testing.T) {
	t.Parallel()
	sc := load(t, "demo-hang.yaml")
	sc.Timeout = 20 * time.Second
	sc.Sync[1].Timeout = 3 * time.Second
	res, err := runSignalled(t, sc, syscall.SIGSTOP)
	checkInfraFailure(t, res, err, false)
}
