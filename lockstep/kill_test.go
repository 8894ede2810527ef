package lockstep_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/scenario"
)

// shortRunDir returns a fresh directory for Options.RunDir, removed when
// the test ends. t.TempDir is too long a parent: the gdbstub and QMP
// sockets live two levels below it and a unix socket path is limited to
// 107 bytes.
func shortRunDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lsk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// qemuProc is a live QEMU process found in /proc.
type qemuProc struct {
	pid int
	dir string // its private directory: runDir/lockstep-N/lockstep-SIDE-M
}

// findQEMU scans /proc for the QEMU of one side of a run under runDir.
// qemu.Start makes that side's directory with
// MkdirTemp(runDir/lockstep-N, "lockstep-"+side+"-"), which appends only
// digits, and QEMU's command line names files inside it. Zombies have an
// empty command line and are never found.
func findQEMU(runDir, side string) (qemuProc, bool) {
	re := regexp.MustCompile("^(" + regexp.QuoteMeta(filepath.Clean(runDir)) +
		"/lockstep-[0-9]+/lockstep-" + regexp.QuoteMeta(side) + "-[0-9]+)/")
	for _, p := range runQEMUs(runDir) {
		for _, arg := range p.argv[1:] {
			// Arguments look like "file:DIR/serial.log" or "socket,path=DIR/gdb.sock".
			if i := strings.Index(arg, "/"); i >= 0 {
				if m := re.FindStringSubmatch(arg[i:]); m != nil {
					return qemuProc{pid: p.pid, dir: m[1]}, true
				}
			}
		}
	}
	return qemuProc{}, false
}

type procArgs struct {
	pid  int
	argv []string
}

// runQEMUs returns the live qemu-system processes whose command line
// mentions runDir.
func runQEMUs(runDir string) []procArgs {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procArgs
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.HasPrefix(filepath.Base(argv[0]), "qemu-system") ||
			!strings.Contains(string(b), filepath.Clean(runDir)+"/") {
			continue
		}
		out = append(out, procArgs{pid, argv})
	}
	return out
}

// noQEMUUnder fails the test if any QEMU of the run under runDir is still
// alive. Unlike noLeftovers it looks only at this run, so parallel tests
// do not see each other's guests.
func noQEMUUnder(t *testing.T, runDir string) {
	t.Helper()
	for _, p := range runQEMUs(runDir) {
		t.Errorf("QEMU left running: pid %d: %s", p.pid, strings.Join(p.argv, " "))
	}
}

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
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if p, ok := findQEMU(s.runDir, s.side); ok {
				serial, _ := os.ReadFile(filepath.Join(p.dir, "serial.log"))
				if bytes.Contains(serial, []byte(s.marker)) {
					if err := syscall.Kill(p.pid, s.sig); err != nil {
						s.err = fmt.Errorf("kill %d: %w", p.pid, err)
						return
					}
					s.pid = p.pid
					return
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				s.err = fmt.Errorf("side %s never printed %q: %w", s.side, s.marker, ctx.Err())
				return
			}
		}
	}()
}

// release makes sure a stopped or straggling QEMU of the run is gone: the
// safety net behind the run's own teardown, which the test checks first.
func release(runDir string) {
	for _, p := range runQEMUs(runDir) {
		syscall.Kill(p.pid, syscall.SIGCONT)
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// runSignalled runs sc under a short run directory, signals side b's QEMU
// with sig while the run waits for sync point 2 (demo-hang: a reached
// report, b spins in hang_here after printing "demo: hang"), and returns
// what Run returned. The test's own deadline is only a safety net: Run
// must return by itself, within the scenario's bound.
func runSignalled(t *testing.T, sc *scenario.Scenario, sig syscall.Signal) (*lockstep.Result, error) {
	t.Helper()
	runDir := shortRunDir(t)
	t.Cleanup(func() { release(runDir) })
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
	noQEMUUnder(t, runDir)
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
