package lockstep

// Engine behaviour tests: whole Runs on fake targets (internal/fake), no
// QEMU. Each table case is a rule of docs/architecture.md "The rules the
// engine keeps" and DESIGN.md "Outcomes and exit status".

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// fakeStart is where every fake program starts.
const fakeStart = 0x1000

// fakeProg is a straight run of n one-byte instructions from 0x1000 that
// ends with end (and code, for Exit), with edits applied to its states.
func fakeProg(n int, end fake.Event, code int, edits ...func([]fake.State)) fake.Program {
	p := fake.Program{States: fake.Linear(fakeStart, n), End: end, ExitCode: code}
	for _, e := range edits {
		e(p.States)
	}
	return p
}

// fakeAt edits the state at pc.
func fakeAt(pc uint64, f func(*fake.State)) func([]fake.State) {
	return func(s []fake.State) {
		i := fake.Find(s, pc)
		if i < 0 {
			panic(fmt.Sprintf("no state at %#x", pc))
		}
		f(&s[i])
	}
}

// fakeEvent makes event e happen on arriving at pc.
func fakeEvent(pc uint64, e fake.Event) func([]fake.State) {
	return fakeAt(pc, func(s *fake.State) { s.Event = e })
}

// fakeReg sets a register on arriving at pc (it keeps its value after).
func fakeReg(pc uint64, name string, v uint64) func([]fake.State) {
	return fakeAt(pc, func(s *fake.State) {
		if s.Regs == nil {
			s.Regs = map[string]uint64{}
		}
		s.Regs[name] = v
	})
}

// fakeElsewhere is a program that never executes anything at 0x1000+:
// n instructions from 0x2000, then end.
func fakeElsewhere(n int, end fake.Event, code int) fake.Program {
	return fake.Program{States: fake.Linear(0x2000, n), End: end, ExitCode: code}
}

// fakeTimeouts are the bounds of fake runs: the fake answers at once, so
// only the waits for something that does not happen matter.
func fakeTimeouts() guest.Timeouts {
	to := fake.Timeouts()
	to.Teardown = 2 * time.Second
	to.Reserve = 200 * time.Millisecond
	to.MinWait = 100 * time.Millisecond
	to.Cleanup = time.Second
	to.FinishFirst = 500 * time.Millisecond
	to.FinishLongest = time.Second
	return to
}

// fakeScenario writes one dummy (non-ELF) kernel, or two for different
// builds, and parses a scenario whose guests run them, followed by body
// (compare, sync, localize, expect). Both sides symbolised by the same
// file is same-binary mode: symbols default to the kernel, and a kernel
// without symbols is fine as long as the scenario uses addresses only.
func fakeScenario(t *testing.T, builds bool, timeout, body string) *scenario.Scenario {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"a.bin", "b.bin"} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte("not an ELF kernel\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if timeout == "" {
		timeout = "10s"
	}
	bKernel := ""
	if builds {
		bKernel = ", kernel: b.bin"
	}
	src := fmt.Sprintf("name: fake\ntimeout: %s\nguests:\n  defaults: {kernel: a.bin}\n  a: {label: good}\n  b: {label: bad%s}\n%s",
		timeout, bKernel, body)
	sc, err := scenario.Parse(filepath.Join(dir, "fake.yaml"), []byte(src))
	if err != nil {
		t.Fatalf("scenario:\n%s\n%v", src, err)
	}
	if sc.SameBinary() == builds {
		t.Fatalf("SameBinary() = %v with different builds %v", sc.SameBinary(), builds)
	}
	return sc
}

// fakeCase is one engine behaviour: what the guests do, the scenario, and
// what the Run must return.
type fakeCase struct {
	name   string
	builds bool   // different builds (two kernels) rather than one binary
	run    string // the scenario's timeout; "" is 10s
	body   string // the scenario from compare: on
	a, b   fake.Program
	// progs, when set, replaces a and b: what each side runs at each
	// launch (launch 1 is localisation's relaunch).
	progs func(side, launch int) fake.Program

	outcome Outcome
	passed  bool
	// infra: Run returns an error wrapping ErrInfrastructure that names
	// guest b and holds every one of errText.
	infra   bool
	errText []string
	syncs   []SyncStatus
	// kinds are the kinds of the real (not noise) divergences, in order.
	kinds []compare.Kind
	// states are the sides' end states; "" is not checked.
	states [2]SideState
	// notes must each be a substring of some note; noNotes of none.
	notes, noNotes []string
	// maxTime bounds the Run; 0 is 8s.
	maxTime time.Duration
	check   func(t *testing.T, res *Result, l *fake.Launcher)
}

// runFake runs tc's scenario on fake guests, with no QEMU anywhere.
func runFake(t *testing.T, tc fakeCase) (*Result, *fake.Launcher, error) {
	t.Helper()
	sc := fakeScenario(t, tc.builds, tc.run, tc.body)
	progs := tc.progs
	if progs == nil {
		progs = fake.Sides(tc.a, tc.b)
	}
	to := fakeTimeouts()
	l := &fake.Launcher{Program: progs, Dir: t.TempDir(), Timeouts: to}
	// The safety net: a Run that does not return fails here, not by
	// hanging the test binary.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	// NoTraceEngine: the trace engine launches a second, traced pair and
	// reads QEMU's CPU log, which fake guests do not write.
	res, err := Run(ctx, sc, Options{RunDir: t.TempDir(), NoTraceEngine: true, launcher: l, timeouts: &to})
	if d, bound := time.Since(start), cmpOr(tc.maxTime, 8*time.Second); d > bound {
		t.Errorf("Run took %v, want at most %v", d, bound)
	}
	if ctx.Err() != nil {
		t.Errorf("Run outlived the test's safety deadline")
	}
	if res == nil {
		t.Fatalf("Run returned no result (err %v)", err)
	}
	return res, l, err
}

func cmpOr(d, dflt time.Duration) time.Duration {
	if d == 0 {
		return dflt
	}
	return d
}

// realKinds lists the kinds of the divergences that are not noise.
func realKinds(res *Result) []compare.Kind {
	var out []compare.Kind
	for _, d := range res.Divergences {
		if !d.Noise {
			out = append(out, d.Kind)
		}
	}
	return out
}

// fakeByKind returns the divergences of kind k.
func fakeByKind(res *Result, k compare.Kind) []compare.Divergence {
	var out []compare.Divergence
	for _, d := range res.Divergences {
		if d.Kind == k {
			out = append(out, d)
		}
	}
	return out
}

func statuses(res *Result) []SyncStatus {
	var out []SyncStatus
	for _, s := range res.Syncs {
		out = append(out, s.Status)
	}
	return out
}

// checkFake checks what every case states, and the invariants of every
// result.
func checkFake(t *testing.T, tc fakeCase, res *Result, err error) {
	t.Helper()
	dump := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "error: %v\nsyncs: %+v\nsides: ", err, res.Syncs)
		for _, s := range res.Sides {
			fmt.Fprintf(&b, "[%s %v] ", s.State, s.ExitCode)
		}
		b.WriteString("\ndivergences:")
		for _, d := range res.Divergences {
			fmt.Fprintf(&b, "\n  %s sync %d step %d pc %s/%s: %s", d.Kind, d.Sync, d.Step, d.PC[0], d.PC[1], d.Summary)
		}
		fmt.Fprintf(&b, "\nnotes: %q", res.Notes)
		return b.String()
	}
	failed := false
	errorf := func(format string, args ...any) {
		t.Helper()
		failed = true
		t.Errorf(format, args...)
	}
	defer func() {
		if failed {
			t.Log(dump())
		}
	}()

	if tc.infra {
		switch {
		case err == nil:
			errorf("Run returned no error, want an infrastructure failure")
		case !errors.Is(err, ErrInfrastructure):
			errorf("Run error %q does not wrap ErrInfrastructure", err)
		default:
			for _, want := range append([]string{"guest b"}, tc.errText...) {
				if !strings.Contains(err.Error(), want) {
					errorf("Run error %q does not mention %q", err, want)
				}
			}
			if res.Error != err.Error() {
				errorf("Result.Error %q, want the returned error %q", res.Error, err)
			}
		}
		var se *ScenarioError
		if errors.As(err, &se) {
			errorf("Run error %q is a scenario error", err)
		}
		if res.Sides[0].State == StateKilled {
			errorf("side a, whose QEMU did nothing wrong, is killed")
		}
	} else if err != nil {
		errorf("Run error: %v", err)
	}
	if res.Outcome != tc.outcome || res.Passed != tc.passed {
		errorf("outcome %s passed %v, want %s passed %v", res.Outcome, res.Passed, tc.outcome, tc.passed)
	}
	if res.Passed && res.Outcome == OutcomeIncomplete {
		errorf("an incomplete run passed")
	}
	if got := statuses(res); !slices.Equal(got, tc.syncs) {
		errorf("sync statuses %v, want %v", got, tc.syncs)
	}
	if got := realKinds(res); !slices.Equal(got, tc.kinds) {
		errorf("divergence kinds %v, want %v", got, tc.kinds)
	}
	for i, want := range tc.states {
		if want != "" && res.Sides[i].State != want {
			errorf("side %s state %q, want %q", scenario.SideNames[i], res.Sides[i].State, want)
		}
	}
	for _, want := range tc.notes {
		if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, want) }) {
			errorf("no note mentions %q", want)
		}
	}
	for _, bad := range tc.noNotes {
		if slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, bad) }) {
			errorf("a note mentions %q", bad)
		}
	}

	// Invariants.
	for _, s := range res.Syncs {
		both := s.Reached[0] && s.Reached[1]
		switch s.Status {
		case SyncMatch, SyncNoise, SyncDiverge, SyncIncomplete:
			if !both {
				errorf("sync %d: status %s, but reached %v", s.Index+1, s.Status, s.Reached)
			}
		case SyncUnreached:
			if both {
				errorf("sync %d: status unreached, but both sides reached it", s.Index+1)
			}
		case SyncSkipped:
			if s.Reached[0] || s.Reached[1] {
				errorf("sync %d: status skipped, but reached %v", s.Index+1, s.Reached)
			}
		default:
			errorf("sync %d: unknown status %q", s.Index+1, s.Status)
		}
		if s.Status == SyncIncomplete && len(s.Uncompared) == 0 {
			errorf("sync %d: incomplete with nothing uncompared", s.Index+1)
		}
	}
	if tc.builds != (res.Mode == ModeDifferentBuilds) {
		errorf("mode %s with different builds %v", res.Mode, tc.builds)
	}
	for _, d := range res.Divergences {
		switch d.Kind {
		case compare.KindExit, compare.KindArrival, compare.KindInstruction:
			// The engine knows where each side was last seen.
			if d.PC[0].Addr == 0 || d.PC[1].Addr == 0 {
				errorf("%s divergence %q without both PCs: %v", d.Kind, d.Summary, d.PC)
			}
		}
		if d.Kind == compare.KindExit && d.Exit == nil {
			errorf("exit divergence %q without its ExitDiff", d.Summary)
		}
		if d.Kind == compare.KindArrival && d.Arrival == nil {
			errorf("arrival divergence %q without its ArrivalDiff", d.Summary)
		}
	}
}

// runCases runs each case in parallel.
func runCases(t *testing.T, cases []fakeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, l, err := runFake(t, tc)
			checkFake(t, tc, res, err)
			if tc.check != nil {
				tc.check(t, res, l)
			}
		})
	}
}

// oneSync is a scenario body with one sync point at brk, comparing rax
// and rbx.
func oneSync(brk, extra, expect string) string {
	return fmt.Sprintf("compare: {registers: [rax, rbx]}\nsync:\n  - break: %q%s\nexpect: %s\n", brk, extra, expect)
}

// TestFakeArrival: side b never executes the sync point's PC and exits.
// That is an arrival divergence, the point is unreached, and expect:
// identical fails.
func TestFakeArrival(t *testing.T) {
	t.Parallel()
	checkArrival := func(state string) func(*testing.T, *Result, *fake.Launcher) {
		return func(t *testing.T, res *Result, _ *fake.Launcher) {
			ds := fakeByKind(res, compare.KindArrival)
			if len(ds) != 1 {
				return
			}
			ad := ds[0].Arrival
			if ad.Reached != [2]bool{true, false} || ad.State != [2]string{"reached", state} {
				t.Errorf("arrival %+v, want a reached and b %s", ad, state)
			}
			if s := res.Syncs[0]; s.Reached != [2]bool{true, false} {
				t.Errorf("sync 1 reached %v, want a only", s.Reached)
			}
			if ds[0].Sync != 0 || ds[0].PC[0].Addr != 0x1010 {
				t.Errorf("arrival at sync %d, a at %s; want sync 0, a at 0x1010", ds[0].Sync, ds[0].PC[0])
			}
		}
	}
	runCases(t, []fakeCase{
		{
			name: "b exits elsewhere, expect identical",
			body: oneSync("0x1010", "", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeElsewhere(8, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncUnreached}, kinds: []compare.Kind{compare.KindArrival},
			states: [2]SideState{"", StateExited},
			check: func(t *testing.T, res *Result, l *fake.Launcher) {
				checkArrival("exited")(t, res, l)
				if c := res.Sides[1].ExitCode; c == nil || *c != 0 {
					t.Errorf("side b exit code %v, want 0", c)
				}
			},
		},
		{
			name: "b exits elsewhere, expect diverge",
			body: oneSync("0x1010", "", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeElsewhere(8, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncUnreached}, kinds: []compare.Kind{compare.KindArrival},
			states: [2]SideState{"", StateExited},
			check:  checkArrival("exited"),
		},
		{
			name: "b exits before the second point",
			body: "compare: {registers: [rax]}\nsync:\n  - break: \"0x1004\"\n  - break: \"0x1010\"\nexpect: identical\n",
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(8, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncMatch, SyncUnreached}, kinds: []compare.Kind{compare.KindArrival},
			states: [2]SideState{"", StateExited},
		},
	})
}

// TestFakeHang: side b spins forever. The sync point's timeout makes that
// an arrival divergence (timeout), not an infrastructure failure.
func TestFakeHang(t *testing.T) {
	t.Parallel()
	runCases(t, []fakeCase{
		{
			name: "b spins elsewhere",
			body: oneSync("0x1010", "\n    timeout: 300ms", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeElsewhere(4, fake.Hang, 0),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncUnreached}, kinds: []compare.Kind{compare.KindArrival},
			maxTime: 5 * time.Second,
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				ds := fakeByKind(res, compare.KindArrival)
				if len(ds) != 1 {
					return
				}
				if ad := ds[0].Arrival; ad.State != [2]string{"reached", "timeout"} {
					t.Errorf("arrival states %v, want reached, timeout", ad.State)
				}
				if pc := ds[0].PC[1].Addr; pc != 0x2003 {
					t.Errorf("b interrupted at %#x, want 0x2003 where it spins", pc)
				}
				if s := res.Sides[1].State; s == StateKilled || s == StateExited {
					t.Errorf("side b, which spins, ended %s", s)
				}
			},
		},
		{
			// Both still run at the bound, interrupted in different
			// places: they agree; nothing was compared.
			name: "both spin",
			body: oneSync("0x1010", "\n    timeout: 300ms", "identical"),
			a:    fakeProg(64, fake.Exit, 0, fakeEvent(0x1006, fake.Hang)), b: fakeElsewhere(4, fake.Hang, 0),
			outcome: OutcomeIncomplete, passed: false,
			syncs: []SyncStatus{SyncUnreached}, notes: []string{"neither side reached sync point 1"},
			maxTime: 5 * time.Second,
		},
		{
			name: "b spins in a loop state, expect diverge",
			body: oneSync("0x1010", "\n    timeout: 300ms", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1008, fake.Hang)),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncUnreached}, kinds: []compare.Kind{compare.KindArrival},
			maxTime: 5 * time.Second,
		},
	})
}

// TestFakeExitBeforeSync: both guests exit alike before a sync point.
// They agree, so there is no divergence; but the point was not compared,
// so the run is incomplete and never passes.
func TestFakeExitBeforeSync(t *testing.T) {
	t.Parallel()
	two := "compare: {registers: [rax]}\nsync:\n  - break: \"0x1004\"\n  - break: \"0x1010\"\nexpect: %s\n"
	exited := [2]SideState{StateExited, StateExited}
	runCases(t, []fakeCase{
		{
			name: "first point, expect identical",
			body: oneSync("0x1010", "", "identical"),
			a:    fakeProg(8, fake.Exit, 0), b: fakeProg(8, fake.Exit, 0),
			outcome: OutcomeIncomplete, passed: false,
			syncs: []SyncStatus{SyncUnreached}, states: exited,
			notes: []string{"neither side reached sync point 1"},
		},
		{
			name: "second point, expect identical",
			body: fmt.Sprintf(two, "identical"),
			a:    fakeProg(8, fake.Exit, 3), b: fakeProg(8, fake.Exit, 3),
			outcome: OutcomeIncomplete, passed: false,
			syncs: []SyncStatus{SyncMatch, SyncUnreached}, states: exited,
			notes: []string{"neither side reached sync point 2"},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				for i, s := range res.Sides {
					if s.ExitCode == nil || *s.ExitCode != 3 {
						t.Errorf("side %d exit code %v, want 3", i, s.ExitCode)
					}
				}
			},
		},
		{
			name: "second point, expect diverge",
			body: fmt.Sprintf(two, "diverge"),
			a:    fakeProg(8, fake.Exit, 0), b: fakeProg(8, fake.Exit, 0),
			outcome: OutcomeIncomplete, passed: false,
			syncs: []SyncStatus{SyncMatch, SyncUnreached}, states: exited,
		},
		{
			// Exiting differently is a divergence.
			name: "different exit statuses",
			body: oneSync("0x1010", "", "identical"),
			a:    fakeProg(8, fake.Exit, 0), b: fakeProg(8, fake.Exit, 1),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncUnreached}, kinds: []compare.Kind{compare.KindArrival}, states: exited,
		},
	})
}

// TestFakeKilled: side b's QEMU is killed by a signal. That is an
// infrastructure failure naming guest b, whatever the scenario expects,
// never an arrival or exit divergence.
func TestFakeKilled(t *testing.T) {
	t.Parallel()
	killedB := [2]SideState{"", StateKilled}
	var cases []fakeCase
	for _, expect := range []string{"identical", "diverge"} {
		cases = append(cases, fakeCase{
			name: "running to the sync point, expect " + expect,
			body: oneSync("0x1010", "", expect),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1008, fake.Kill)),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal 9"},
			syncs: []SyncStatus{SyncSkipped}, states: killedB,
		})
	}
	cases = append(cases,
		fakeCase{
			name: "running to the second point",
			body: "compare: {registers: [rax]}\nsync:\n  - break: \"0x1004\"\n  - break: \"0x1010\"\nexpect: diverge\n",
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1008, fake.Kill)),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal"},
			syncs: []SyncStatus{SyncMatch, SyncSkipped}, states: killedB,
		},
		fakeCase{
			name: "in a step window",
			body: oneSync("0x1010", "\n    step: 10", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1014, fake.Kill)),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal"},
			// Reached and compared before the window failed.
			syncs: []SyncStatus{SyncMatch}, states: killedB,
		},
		fakeCase{
			name: "in a step window between builds", builds: true,
			body: oneSync("0x1010", "\n    step: 10", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1014, fake.Kill)),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal"},
			syncs: []SyncStatus{SyncMatch}, states: killedB,
		},
		fakeCase{
			name: "after the last sync point",
			body: oneSync("0x1010", "", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1020, fake.Kill)),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal"},
			syncs: []SyncStatus{SyncMatch}, states: killedB,
		},
		fakeCase{
			name: "at the end of the program",
			body: oneSync("0x1010", "", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Kill, 0),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal"},
			syncs: []SyncStatus{SyncMatch}, states: killedB,
		},
		fakeCase{
			name: "never started",
			body: oneSync("0x1010", "", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fake.Program{Fail: errors.New("qemu-system-x86_64: not found")},
			outcome: OutcomeError, infra: true, errText: []string{"qemu-system-x86_64: not found"},
			syncs: []SyncStatus{SyncSkipped},
		},
	)
	runCases(t, cases)
}

// TestFakeFrozen: side b's QEMU stops answering (SIGSTOP). The run ends,
// within its bounds, as an infrastructure failure.
func TestFakeFrozen(t *testing.T) {
	t.Parallel()
	runCases(t, []fakeCase{
		{
			name: "running to the sync point",
			body: oneSync("0x1010", "\n    timeout: 1s", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1008, fake.Freeze)),
			outcome: OutcomeError, infra: true, errText: []string{"stopped answering"},
			syncs: []SyncStatus{SyncSkipped}, states: [2]SideState{"", StateKilled},
			maxTime: 5 * time.Second,
		},
		{
			// A single step has no bound of its own: the run's timeout
			// is the bound.
			name: "in a step window", run: "2s",
			body: oneSync("0x1010", "\n    step: 10", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1014, fake.Freeze)),
			outcome: OutcomeError, infra: true, errText: []string{"stopped answering"},
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{"", StateKilled},
			maxTime: 6 * time.Second,
		},
		{
			name: "after the last sync point",
			body: oneSync("0x1010", "", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1020, fake.Freeze)),
			outcome: OutcomeError, infra: true, errText: []string{"stopped answering"},
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{"", StateKilled},
			maxTime: 5 * time.Second,
		},
	})
}

// TestFakeInternalError: QEMU stops the VM with an internal error (KVM's
// "emulation failure"). That is an infrastructure failure carrying QEMU's
// stderr, not a guest that stopped elsewhere.
func TestFakeInternalError(t *testing.T) {
	t.Parallel()
	stderr := []string{"internal error", "KVM internal error. Suberror: 1", "emulation failure"}
	runCases(t, []fakeCase{
		{
			name: "running to the sync point",
			body: oneSync("0x1010", "", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1008, fake.InternalError)),
			outcome: OutcomeError, infra: true, errText: stderr,
			syncs: []SyncStatus{SyncSkipped}, states: [2]SideState{"", StateKilled},
		},
		{
			name: "after the last sync point",
			body: oneSync("0x1010", "", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1020, fake.InternalError)),
			outcome: OutcomeError, infra: true, errText: stderr,
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{"", StateKilled},
		},
		{
			name: "in a step window", run: "2s",
			body: oneSync("0x1010", "\n    step: 10", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1014, fake.InternalError)),
			outcome: OutcomeError, infra: true, errText: stderr,
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{"", StateKilled},
			maxTime: 6 * time.Second,
		},
	})
}

// TestFakeLostStep: QEMU answers a single step without executing it. The
// engine steps again, so the sides do not fall an instruction apart (no
// false divergence), and says so in a note.
func TestFakeLostStep(t *testing.T) {
	t.Parallel()
	lostNote := "guest b (bad): 1 single steps executed nothing and were repeated"
	identical := func(steps int) func(*testing.T, *Result, *fake.Launcher) {
		return func(t *testing.T, res *Result, _ *fake.Launcher) {
			if s := res.Syncs[0].Steps; s != steps {
				t.Errorf("window stepped %d instructions, want %d", s, steps)
			}
		}
	}
	runCases(t, []fakeCase{
		{
			name: "inside the window",
			body: oneSync("0x1010", "\n    step: 10", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1013, fake.LostStep)),
			outcome: OutcomeIdentical, passed: true,
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{StateExited, StateExited},
			notes: []string{lostNote}, check: identical(10),
		},
		{
			name: "first step of the window",
			body: oneSync("0x1010", "\n    step: 10", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0, fakeEvent(0x1010, fake.LostStep)),
			outcome: OutcomeIdentical, passed: true,
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{StateExited, StateExited},
			notes: []string{lostNote}, check: identical(10),
		},
		{
			name:    "registers change in the window",
			body:    oneSync("0x1010", "\n    step: 10", "identical"),
			a:       fakeProg(64, fake.Exit, 0, fakeReg(0x1014, "rax", 7)),
			b:       fakeProg(64, fake.Exit, 0, fakeReg(0x1014, "rax", 7), fakeEvent(0x1012, fake.LostStep)),
			outcome: OutcomeIdentical, passed: true,
			syncs: []SyncStatus{SyncMatch}, notes: []string{lostNote}, check: identical(10),
		},
		{
			name: "while localising", body: localiseBody,
			a:       fakeProg(64, fake.Exit, 0),
			b:       fakeProg(64, fake.Exit, 0, fakeReg(0x1010, "rax", 1), fakeEvent(0x1008, fake.LostStep)),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncMatch, SyncDiverge},
			kinds: []compare.Kind{compare.KindRegister, compare.KindInstruction},
			check: checkLocalised,
		},
	})
}

// TestFakeExitInWindow: a guest exits inside a step window. One side
// alone is an exit divergence at that sync point; both at the same
// instruction, alike, simply end the window.
func TestFakeExitInWindow(t *testing.T) {
	t.Parallel()
	window := "\n    step: 20"
	// b's last state is 0x1014: its 5th step after 0x1010 exits.
	exitOne := func(t *testing.T, res *Result, _ *fake.Launcher) {
		ds := fakeByKind(res, compare.KindExit)
		if len(ds) != 1 {
			return
		}
		d := ds[0]
		if d.Sync != 0 || d.Exit.State[1] != "exited" || d.Exit.State[0] == "exited" {
			t.Errorf("exit divergence %+v at sync %d, want at sync 0 with b exited and a not", d.Exit, d.Sync)
		}
		if c := d.Exit.ExitCode[1]; c == nil || *c != 0 {
			t.Errorf("b's exit code %v, want 0", c)
		}
	}
	bothExit := func(code int) func(*testing.T, *Result, *fake.Launcher) {
		return func(t *testing.T, res *Result, _ *fake.Launcher) {
			if s := res.Syncs[0].Steps; s <= 0 || s > 20 {
				t.Errorf("window stepped %d instructions, want 1..20", s)
			}
			for i, s := range res.Sides {
				if s.ExitCode == nil || *s.ExitCode != code {
					t.Errorf("side %d exit code %v, want %d", i, s.ExitCode, code)
				}
			}
		}
	}
	runCases(t, []fakeCase{
		{
			name: "only b exits",
			body: oneSync("0x1010", window, "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(0x15, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindExit},
			states: [2]SideState{StateExited, StateExited},
			check: func(t *testing.T, res *Result, l *fake.Launcher) {
				exitOne(t, res, l)
				ds := fakeByKind(res, compare.KindExit)
				if len(ds) != 1 {
					return
				}
				// Lockstep: b exits at the 5th step; a stands after it,
				// b was last seen before it.
				if d := ds[0]; d.Step != 5 || d.PC[0].Addr != 0x1015 || d.PC[1].Addr != 0x1014 {
					t.Errorf("exit divergence at step %d, pc %s/%s; want step 5, pc 0x1015/0x1014", d.Step, d.PC[0], d.PC[1])
				}
			},
		},
		{
			name: "only b exits, expect identical",
			body: oneSync("0x1010", window, "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(0x15, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindExit},
			check: exitOne,
		},
		{
			name: "both exit alike",
			body: oneSync("0x1010", window, "identical"),
			a:    fakeProg(0x15, fake.Exit, 3), b: fakeProg(0x15, fake.Exit, 3),
			outcome: OutcomeIdentical, passed: true,
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{StateExited, StateExited},
			check: func(t *testing.T, res *Result, l *fake.Launcher) {
				bothExit(3)(t, res, l)
				if s := res.Syncs[0].Steps; s != 5 {
					t.Errorf("window stepped %d instructions, want 5 (the exit)", s)
				}
			},
		},
		{
			name: "both exit, statuses differ",
			body: oneSync("0x1010", window, "identical"),
			a:    fakeProg(0x15, fake.Exit, 0), b: fakeProg(0x15, fake.Exit, 1),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindExit},
			states: [2]SideState{StateExited, StateExited},
		},
		{
			name: "only b exits between builds", builds: true,
			body: oneSync("0x1010", window, "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(0x15, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindExit},
			states: [2]SideState{StateExited, StateExited},
			notes:  []string{"compared by function entries"},
			check: func(t *testing.T, res *Result, l *fake.Launcher) {
				exitOne(t, res, l)
				ds := fakeByKind(res, compare.KindExit)
				if len(ds) != 1 {
					return
				}
				// Between builds each side steps the whole window on its
				// own: a ends it at 0x1010+20.
				if d := ds[0]; d.PC[0].Addr != 0x1024 || d.PC[1].Addr != 0x1014 {
					t.Errorf("exit divergence pc %s/%s, want 0x1024/0x1014", d.PC[0], d.PC[1])
				}
			},
		},
		{
			// b exited in sync point 1's window: at sync point 2 it is
			// where it was last seen, 0x1014, not where the window began.
			name: "b exits, then the next sync point",
			body: "compare: {registers: [rax]}\nsync:\n  - break: \"0x1010\"\n    step: 20\n  - break: \"0x1030\"\nexpect: diverge\n",
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(0x15, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncDiverge, SyncUnreached}, kinds: []compare.Kind{compare.KindExit, compare.KindArrival},
			states: [2]SideState{"", StateExited},
			check: func(t *testing.T, res *Result, l *fake.Launcher) {
				exitOne(t, res, l)
				if ds := fakeByKind(res, compare.KindArrival); len(ds) == 1 && ds[0].PC[1].Addr != 0x1014 {
					t.Errorf("arrival divergence: b at %s, want 0x1014 where it was last seen", ds[0].PC[1])
				}
			},
		},
		{
			// The window reported the exit; the end of the run must not
			// report it again.
			name: "only b exits, a runs on",
			body: oneSync("0x1010", window, "diverge"),
			a:    fakeProg(64, fake.Hang, 0), b: fakeProg(0x15, fake.Exit, 0),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindExit},
			states: [2]SideState{"", StateExited},
			check:  exitOne,
		},
		{
			name: "both exit, statuses differ between builds", builds: true,
			body: oneSync("0x1010", window, "identical"),
			a:    fakeProg(0x15, fake.Exit, 0), b: fakeProg(0x18, fake.Exit, 1),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindExit},
			states: [2]SideState{StateExited, StateExited},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				if ds := fakeByKind(res, compare.KindExit); len(ds) == 1 && ds[0].Sync != 0 {
					t.Errorf("exit divergence at sync %d, want 0 (in the window)", ds[0].Sync)
				}
			},
		},
		{
			name: "both exit alike between builds", builds: true,
			body: oneSync("0x1010", window, "identical"),
			a:    fakeProg(0x15, fake.Exit, 3), b: fakeProg(0x18, fake.Exit, 3),
			outcome: OutcomeIdentical, passed: true,
			syncs: []SyncStatus{SyncMatch}, states: [2]SideState{StateExited, StateExited},
			check: bothExit(3),
		},
	})
}

// TestFakeExitAfterLastSync: the guests end differently after the last
// sync point: an exit divergence (sync -1) with both PCs.
func TestFakeExitAfterLastSync(t *testing.T) {
	t.Parallel()
	runCases(t, []fakeCase{
		{
			name: "statuses differ",
			body: oneSync("0x1010", "", "diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 1),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncMatch}, kinds: []compare.Kind{compare.KindExit},
			states: [2]SideState{StateExited, StateExited},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				if ds := fakeByKind(res, compare.KindExit); len(ds) == 1 && ds[0].Sync != -1 {
					t.Errorf("exit divergence at sync %d, want -1 (after the last)", ds[0].Sync)
				}
			},
		},
		{
			name: "b runs on",
			body: oneSync("0x1010", "", "identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Hang, 0),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncMatch}, kinds: []compare.Kind{compare.KindExit},
			states: [2]SideState{StateExited, ""},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				if ds := fakeByKind(res, compare.KindExit); len(ds) == 1 && ds[0].Exit.State != [2]string{"exited", "running"} {
					t.Errorf("exit states %v, want exited, running", ds[0].Exit.State)
				}
			},
		},
	})
}

// localiseBody: sync point 2 diverges in rax after sync point 1 matched;
// b's rax changes on arriving at 0x1010, 12 instructions after 0x1004.
const localiseBody = "compare: {registers: [rax]}\nsync:\n  - break: \"0x1004\"\n  - break: \"0x1020\"\nlocalize: {checkpoint: restart}\nexpect: diverge\n"

// checkLocalised checks the instruction divergence localisation found.
func checkLocalised(t *testing.T, res *Result, l *fake.Launcher) {
	t.Helper()
	ds := fakeByKind(res, compare.KindInstruction)
	if len(ds) != 1 {
		return
	}
	d := ds[0]
	if d.Sync != 1 || d.Step != 12 || d.PC[0].Addr != 0x100f || d.PC[1].Addr != 0x100f {
		t.Errorf("instruction divergence at sync %d step %d pc %s/%s; want sync 1, step 12, pc 0x100f on both", d.Sync, d.Step, d.PC[0], d.PC[1])
	}
	if d.Instruction == nil || len(d.Instruction.Registers) == 0 || d.Instruction.Registers[0].Name != "rax" {
		t.Errorf("instruction divergence %+v, want rax", d.Instruction)
	}
	for side := range 2 {
		if n := l.Launches(side); n != 2 {
			t.Errorf("side %d launched %d times, want 2 (the run, the relaunch)", side, n)
		}
	}
}

// TestFakeLocalise: a register divergence at sync point 2 after a match
// at 1 is localised, on a relaunched pair, to the first divergent
// instruction. A relaunched QEMU that dies is infrastructure, not a
// missing divergence or a guest "not deterministic enough".
// noInstruction checks that sync 2 was reached and compared before
// localisation failed.
func noInstruction(t *testing.T, res *Result, _ *fake.Launcher) {
	t.Helper()
	if s := res.Syncs[1]; s.Reached != [2]bool{true, true} || s.Divergences == 0 {
		t.Errorf("sync 2: reached %v, %d divergences; want reached and compared", s.Reached, s.Divergences)
	}
}

// relaunchFailed checks a run whose localisation QEMU failed: no
// localised divergence, and the run's own side b, whose QEMU did nothing
// wrong, is not marked killed.
func relaunchFailed(t *testing.T, res *Result, l *fake.Launcher) {
	t.Helper()
	noInstruction(t, res, l)
	if s := res.Sides[1].State; s == StateKilled {
		t.Errorf("side b ended %s, but only its localisation QEMU died", s)
	}
}

func TestFakeLocalise(t *testing.T) {
	t.Parallel()
	good := fakeProg(64, fake.Exit, 0)
	bad := func(edits ...func([]fake.State)) fake.Program {
		return fakeProg(64, fake.Exit, 0, append([]func([]fake.State){fakeReg(0x1010, "rax", 1)}, edits...)...)
	}
	// onRelaunch runs relaunched on side b's relaunch, good and bad
	// otherwise.
	onRelaunch := func(relaunched fake.Program) func(side, launch int) fake.Program {
		return func(side, launch int) fake.Program {
			switch {
			case side == 0:
				return good
			case launch == 0:
				return bad()
			}
			return relaunched
		}
	}
	notDeterministic := "not deterministic enough"
	runCases(t, []fakeCase{
		{
			name: "first divergent instruction",
			body: localiseBody, a: good, b: bad(),
			outcome: OutcomeDiverged, passed: true,
			syncs:  []SyncStatus{SyncMatch, SyncDiverge},
			kinds:  []compare.Kind{compare.KindRegister, compare.KindInstruction},
			states: [2]SideState{StateExited, StateExited}, noNotes: []string{notDeterministic},
			check: checkLocalised,
		},
		{
			// The fake QEMU has no query-replay: the recording cannot be
			// measured, so replay gives no answer and stepping localises.
			name: "replay unavailable falls back to stepping",
			body: strings.Replace(localiseBody, "localize: {checkpoint: restart}", "localize: {checkpoint: restart, method: replay}", 1),
			a:    good, b: bad(),
			outcome: OutcomeDiverged, passed: true,
			syncs:  []SyncStatus{SyncMatch, SyncDiverge},
			kinds:  []compare.Kind{compare.KindRegister, compare.KindInstruction},
			states: [2]SideState{StateExited, StateExited},
			notes:  []string{"replay bisection gave no answer", "no QMP command query-replay"},
			check: func(t *testing.T, res *Result, l *fake.Launcher) {
				// The run, the recording that failed, the relaunch.
				loc := res.Syncs[1].Localization
				if loc == nil || loc.Method != scenario.MethodStep || loc.Fallback == "" || !strings.Contains(loc.Why, "replay fell back") {
					t.Errorf("localisation %+v, want stepping after a replay fallback", loc)
				}
			},
		},
		{
			name: "relaunched b killed while replaying",
			body: localiseBody, progs: onRelaunch(bad(fakeEvent(0x1002, fake.Kill))),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal", "its QEMU b-localise"},
			// Sync 2 was reached and compared before localisation failed.
			syncs: []SyncStatus{SyncMatch, SyncDiverge}, kinds: []compare.Kind{compare.KindRegister},
			noNotes: []string{notDeterministic}, check: relaunchFailed,
		},
		{
			name: "relaunched b killed while stepping",
			body: localiseBody, progs: onRelaunch(bad(fakeEvent(0x1008, fake.Kill))),
			outcome: OutcomeError, infra: true, errText: []string{"killed by signal", "its QEMU b-localise"},
			syncs: []SyncStatus{SyncMatch, SyncDiverge}, kinds: []compare.Kind{compare.KindRegister},
			noNotes: []string{notDeterministic}, check: relaunchFailed,
		},
		{
			name: "relaunched b frozen while stepping", run: "3s",
			body: localiseBody, progs: onRelaunch(bad(fakeEvent(0x1008, fake.Freeze))),
			outcome: OutcomeError, infra: true, errText: []string{"stopped answering"},
			syncs: []SyncStatus{SyncMatch, SyncDiverge}, kinds: []compare.Kind{compare.KindRegister},
			noNotes: []string{notDeterministic}, check: noInstruction,
		},
		{
			name: "relaunched b does not start",
			body: localiseBody, progs: onRelaunch(fake.Program{Fail: errors.New("cannot allocate memory")}),
			outcome: OutcomeError, infra: true, errText: []string{"cannot allocate memory"},
			syncs: []SyncStatus{SyncMatch, SyncDiverge}, kinds: []compare.Kind{compare.KindRegister},
			noNotes: []string{notDeterministic}, check: noInstruction,
		},
		{
			// The contrast: a replay that goes elsewhere is the guests'
			// doing, a note, and the run's findings stand.
			name: "relaunched b goes elsewhere",
			body: localiseBody, progs: onRelaunch(fakeElsewhere(8, fake.Exit, 0)),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncMatch, SyncDiverge}, kinds: []compare.Kind{compare.KindRegister},
			notes: []string{notDeterministic},
		},
	})
}

// TestFakeUnreadableMemory: a compared range unreadable on both sides is
// not compared (incomplete, never a pass); unreadable on one side only is
// a memory divergence.
func TestFakeUnreadableMemory(t *testing.T) {
	t.Parallel()
	body := func(expect string) string {
		return "compare:\n  registers: [rax]\n  memory:\n    - {address: 0x9000, length: 16}\nsync:\n  - break: \"0x1010\"\nexpect: " + expect + "\n"
	}
	low := []fake.Range{{Addr: 0, Len: 0x8000}}
	mapped := func(p fake.Program, m []fake.Range) fake.Program { p.Mapped = m; return p }
	runCases(t, []fakeCase{
		{
			name: "on both sides, expect identical",
			body: body("identical"),
			a:    mapped(fakeProg(64, fake.Exit, 0), low), b: mapped(fakeProg(64, fake.Exit, 0), low),
			outcome: OutcomeIncomplete, passed: false,
			syncs: []SyncStatus{SyncIncomplete}, states: [2]SideState{StateExited, StateExited},
			notes: []string{"unreadable on both sides"},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				if u := res.Syncs[0].Uncompared; !slices.Equal(u, []string{"memory 0x9000"}) {
					t.Errorf("uncompared %q, want memory 0x9000", u)
				}
			},
		},
		{
			name: "on both sides, expect diverge",
			body: body("diverge"),
			a:    mapped(fakeProg(64, fake.Exit, 0), low), b: mapped(fakeProg(64, fake.Exit, 0), low),
			outcome: OutcomeIncomplete, passed: false,
			syncs: []SyncStatus{SyncIncomplete},
		},
		{
			name: "on b only",
			body: body("diverge"),
			a:    fakeProg(64, fake.Exit, 0), b: mapped(fakeProg(64, fake.Exit, 0), low),
			outcome: OutcomeDiverged, passed: true,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindMemory},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				if ds := fakeByKind(res, compare.KindMemory); len(ds) == 1 && !strings.Contains(ds[0].Summary, "readable on one side only") {
					t.Errorf("memory divergence %q, want readable on one side only", ds[0].Summary)
				}
			},
		},
		{
			name: "readable on both",
			body: body("identical"),
			a:    fakeProg(64, fake.Exit, 0), b: fakeProg(64, fake.Exit, 0),
			outcome: OutcomeIdentical, passed: true,
			syncs: []SyncStatus{SyncMatch},
		},
	})
}

// fakeNops fills the code of a program with one-byte nops, so that the
// engine decodes each state's instruction as falling through to the next.
func fakeNops(s []fake.State) {
	fakeAt(fakeStart, func(st *fake.State) {
		st.Mem = map[uint64][]byte{fakeStart: []byte(strings.Repeat("\x90", 256))}
	})(s)
}

// TestFakeStepWindowBlame: a step is blamed only for what it changed. A
// register that already differs at the sync point is not the first step's
// doing (issue 15, item 1: the old engine blamed "step 1 … changed r10").
func TestFakeStepWindowBlame(t *testing.T) {
	t.Parallel()
	body := "compare: {registers: [general]}\nsync:\n  - {break: \"0x1002\", step: 10}\nexpect: identical\n"
	preexisting := fakeReg(fakeStart, "r10", 0xf6d8320b)
	runCases(t, []fakeCase{
		{
			name: "difference already at the sync point",
			body: body, a: fakeProg(40, fake.Exit, 1), b: fakeProg(40, fake.Exit, 1, preexisting),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindRegister},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				if s := res.Syncs[0].Steps; s != 10 {
					t.Errorf("window stepped %d instructions, want all 10", s)
				}
			},
		},
		{
			name: "a later step makes a new difference",
			body: body, a: fakeProg(40, fake.Exit, 1), b: fakeProg(40, fake.Exit, 1, preexisting, fakeReg(0x1007, "rbx", 5)),
			outcome: OutcomeDiverged, passed: false,
			syncs: []SyncStatus{SyncDiverge}, kinds: []compare.Kind{compare.KindRegister, compare.KindInstruction},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				ds := fakeByKind(res, compare.KindInstruction)
				if len(ds) != 1 {
					return
				}
				d := ds[0]
				regs := []string{}
				for _, r := range d.Instruction.Registers {
					regs = append(regs, r.Name)
				}
				if d.Step != 5 || d.PC[0].Addr != 0x1006 || !slices.Equal(regs, []string{"rbx"}) {
					t.Errorf("instruction divergence at step %d pc %s, registers %v; want step 5 at 0x1006, rbx only", d.Step, d.PC[0], regs)
				}
				if !strings.Contains(d.Summary, "r10 already differed") {
					t.Errorf("summary %q does not say r10 already differed", d.Summary)
				}
			},
		},
	})
}

// TestFakeStepAnomaly: a single step that carries one side two
// instructions on (nested KVM skipping a push) is an accelerator anomaly,
// not a divergence: the other side catches up and stepping goes on (issue
// 15, item 4).
func TestFakeStepAnomaly(t *testing.T) {
	t.Parallel()
	window := "compare: {registers: [general]}\nsync:\n  - {break: \"0x1002\", step: 10}\nexpect: identical\n"
	skip := fakeEvent(0x1004, fake.SkipStep)
	runCases(t, []fakeCase{
		{
			name: "step window",
			body: window, a: fakeProg(40, fake.Exit, 1, fakeNops), b: fakeProg(40, fake.Exit, 1, fakeNops, skip),
			outcome: OutcomeIdentical, passed: true, syncs: []SyncStatus{SyncMatch},
			notes: []string{"guest b (bad): 1 single step carried the guest two instructions on"},
		},
		{
			name: "both sides skip alike",
			body: window, a: fakeProg(40, fake.Exit, 1, fakeNops, skip), b: fakeProg(40, fake.Exit, 1, fakeNops, skip),
			outcome: OutcomeIdentical, passed: true, syncs: []SyncStatus{SyncMatch},
			noNotes: []string{"two instructions on"},
		},
		{
			// Without decodable code the engine cannot tell a skip from a
			// jump: the difference stands, as a divergence.
			name: "undecodable code is not excused",
			body: window, a: fakeProg(40, fake.Exit, 1), b: fakeProg(40, fake.Exit, 1, skip),
			outcome: OutcomeDiverged, passed: false, syncs: []SyncStatus{SyncDiverge},
			kinds: []compare.Kind{compare.KindInstruction},
		},
		{
			name:    "while localising",
			body:    "compare: {registers: [rax]}\nsync:\n  - break: \"0x1004\"\n  - break: \"0x1020\"\nlocalize: {checkpoint: restart}\nexpect: diverge\n",
			a:       fakeProg(64, fake.Exit, 1, fakeNops),
			b:       fakeProg(64, fake.Exit, 1, fakeNops, fakeEvent(0x1008, fake.SkipStep), fakeReg(0x1010, "rax", 7)),
			outcome: OutcomeDiverged, passed: true, syncs: []SyncStatus{SyncMatch, SyncDiverge},
			kinds: []compare.Kind{compare.KindRegister, compare.KindInstruction},
			notes: []string{"two instructions on"},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				ds := fakeByKind(res, compare.KindInstruction)
				if len(ds) == 1 && (ds[0].PC[0].Addr != 0x100f || ds[0].PC[1].Addr != 0x100f) {
					t.Errorf("localised at %s/%s, want 0x100f on both sides", ds[0].PC[0], ds[0].PC[1])
				}
			},
		},
	})
}

// fakeStores makes states 10, 11, ... store n words to 0x5000: the value
// of store i is i, or i+1000 from store number from on (1-based, 0 for
// never).
func fakeStores(n, from int) func([]fake.State) {
	return func(s []fake.State) {
		for i := range n {
			v := uint64(i)
			if from > 0 && i+1 >= from {
				v += 1000
			}
			b := make([]byte, 8)
			for j := range b {
				b[j] = byte(v >> (8 * j))
			}
			s[10+i].Mem = map[uint64][]byte{0x5000: b}
		}
	}
}

// TestFakeWriteBudget: write localisation names the first differing store
// when it is within localize.max_writes, and when the budget runs out it
// says so and nothing else: never also "the same on both sides" (issue 15,
// item 3), and never a note per store.
func TestFakeWriteBudget(t *testing.T) {
	t.Parallel()
	body := "compare: {registers: [rax], memory: [{address: 0x5000, length: 8}]}\n" +
		"sync:\n  - break: \"0x1004\"\n  - break: \"0x1190\"\nlocalize: {checkpoint: restart, max_writes: 100}\nexpect: diverge\n"
	const sameNote = "are the same on both sides"
	runCases(t, []fakeCase{
		{
			name: "differing store within the budget",
			body: body, a: fakeProg(420, fake.Exit, 1, fakeStores(300, 0)), b: fakeProg(420, fake.Exit, 1, fakeStores(300, 50)),
			outcome: OutcomeDiverged, passed: true, syncs: []SyncStatus{SyncMatch, SyncDiverge},
			kinds: []compare.Kind{compare.KindMemory, compare.KindInstruction}, noNotes: []string{sameNote, "not localised"},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				ds := fakeByKind(res, compare.KindInstruction)
				if len(ds) == 1 && !strings.Contains(ds[0].Summary, "write #50 to 0x5000+0x0") {
					t.Errorf("localised %q, want write #50", ds[0].Summary)
				}
			},
		},
		{
			name: "budget runs out before the differing store",
			body: body, a: fakeProg(420, fake.Exit, 1, fakeStores(300, 0)), b: fakeProg(420, fake.Exit, 1, fakeStores(300, 300)),
			outcome: OutcomeDiverged, passed: true, syncs: []SyncStatus{SyncMatch, SyncDiverge},
			kinds:   []compare.Kind{compare.KindMemory},
			notes:   []string{"not localised: the budget of 100 writes (localize.max_writes) ran out", "the first 100 writes to 0x5000+0x0 between sync points 1 and 2 match"},
			noNotes: []string{sameNote},
		},
		{
			name: "differing last store within a larger budget",
			body: strings.Replace(body, "max_writes: 100", "max_writes: 400", 1),
			a:    fakeProg(420, fake.Exit, 1, fakeStores(300, 0)), b: fakeProg(420, fake.Exit, 1, fakeStores(300, 300)),
			outcome: OutcomeDiverged, passed: true, syncs: []SyncStatus{SyncMatch, SyncDiverge},
			kinds:   []compare.Kind{compare.KindMemory, compare.KindInstruction},
			noNotes: []string{sameNote, "not localised"},
			check: func(t *testing.T, res *Result, _ *fake.Launcher) {
				ds := fakeByKind(res, compare.KindInstruction)
				if len(ds) == 1 && !strings.Contains(ds[0].Summary, "write #300 to 0x5000+0x0") {
					t.Errorf("localised %q, want write #300", ds[0].Summary)
				}
			},
		},
	})
}
