package fake_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/rsp"
)

// outcome is what a step or continue should come to.
type outcome struct {
	kind   byte   // stop reply kind: 'T', 'W', or 0 for none
	signal int    // for 'T'
	pc     uint64 // for 'T': where the guest is
	exit   int    // for 'W': the guest's exit status
	fault  string // when set, a *guest.Fault mentioning it
	ctxErr bool   // an error wrapping context.DeadlineExceeded, not a fault
	health string // when set, Healthy afterwards gives a Fault mentioning it
}

func check(t *testing.T, g *guest.Guest, st rsp.StopReply, err error, want outcome) {
	t.Helper()
	switch {
	case want.fault != "":
		wantFault(t, err, want.fault)
		if g.Exited() {
			t.Errorf("a guest whose QEMU failed is marked exited")
		}
		return
	case want.ctxErr:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v: want one wrapping context.DeadlineExceeded", err)
		}
		var f *guest.Fault
		if errors.As(err, &f) {
			t.Fatalf("interrupted guest gives a fault: %v", err)
		}
	case err != nil:
		t.Fatalf("unexpected error: %v", err)
	}
	if st.Kind != want.kind {
		t.Fatalf("stop %v (%q): want kind %c", st, st.Raw, want.kind)
	}
	switch st.Kind {
	case 'W':
		if !st.Exited() || !g.Exited() {
			t.Errorf("stop %v: Exited %v, guest Exited %v; want both", st, st.Exited(), g.Exited())
		}
		if c := g.ExitStatus(); c == nil || *c != want.exit {
			t.Errorf("exit status %v, want %d", c, want.exit)
		}
		return
	case 'T':
		if st.Signal != want.signal || st.Thread != "p01.01" {
			t.Errorf("stop %v: want signal %d, thread p01.01", st, want.signal)
		}
		if pc := mustPC(t, g); pc != want.pc {
			t.Errorf("pc %#x, want %#x", pc, want.pc)
		}
		if g.Exited() || g.ExitStatus() != nil {
			t.Errorf("a stopped guest is marked exited")
		}
	}
	f := g.Healthy(context.Background())
	switch {
	case want.health == "" && f != nil:
		t.Errorf("Healthy after the stop: %v", f)
	case want.health != "" && f == nil:
		t.Errorf("Healthy after the stop: nil, want a fault mentioning %q", want.health)
	case want.health != "":
		wantFault(t, f, want.health)
	}
}

func TestStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		prog  fake.Program
		steps int // steps before the one checked
		want  outcome
	}{
		{"moves", linear(4, fake.Hang, 0), 0, outcome{kind: 'T', signal: 5, pc: 0x1001}},
		{"third", linear(4, fake.Hang, 0), 2, outcome{kind: 'T', signal: 5, pc: 0x1003}},
		{"hang at the end stays put", linear(2, fake.Hang, 0), 3, outcome{kind: 'T', signal: 5, pc: 0x1001}},
		{"end exit", linear(2, fake.Exit, 3), 1, outcome{kind: 'W', exit: 3}},
		{"exit event", with(linear(5, fake.Hang, 0), 2, fake.Exit, 7), 1, outcome{kind: 'W', exit: 7}},
		{"exit zero", with(linear(5, fake.Hang, 0), 1, fake.Exit, 0), 0, outcome{kind: 'W', exit: 0}},
		{"kill", with(linear(5, fake.Hang, 0), 2, fake.Kill, 0), 1, outcome{fault: "signal"}},
		{"end kill", linear(2, fake.Kill, 0), 1, outcome{fault: "killed by signal 9"}},
		{"freeze", with(linear(5, fake.Hang, 0), 1, fake.Freeze, 0), 0, outcome{fault: "stopped answering"}},
		{"internal error", with(linear(5, fake.Hang, 0), 3, fake.InternalError, 0), 2,
			outcome{kind: 'T', signal: 5, pc: 0x1003, health: "internal error"}},
		{"end internal error", linear(2, fake.InternalError, 0), 1,
			outcome{kind: 'T', signal: 5, pc: 0x1001, health: "emulation failure"}},
		{"lost step", with(linear(5, fake.Hang, 0), 0, fake.LostStep, 0), 0, outcome{kind: 'T', signal: 5, pc: 0x1000}},
		{"after a lost step", with(linear(5, fake.Hang, 0), 0, fake.LostStep, 0), 1, outcome{kind: 'T', signal: 5, pc: 0x1001}},
		{"hang state", with(linear(5, fake.Hang, 0), 2, fake.Hang, 0), 4, outcome{kind: 'T', signal: 5, pc: 0x1002}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, _, _ := newGuest(t, tc.prog)
			ctx := bounded(t, 5*time.Second)
			for range tc.steps {
				if _, err := g.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			sctx := bounded(t, 100*time.Millisecond)
			start := time.Now()
			st, err := g.Step(sctx)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("step took %v", d)
			}
			check(t, g, st, err, tc.want)
		})
	}
}

func TestCont(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		prog  fake.Program
		bps   []uint64
		watch []fake.Range
		want  outcome
	}{
		{"breakpoint", linear(10, fake.Exit, 0), []uint64{0x1005, 0x1007}, nil, outcome{kind: 'T', signal: 5, pc: 0x1005}},
		{"no breakpoint: exit", linear(10, fake.Exit, 4), nil, nil, outcome{kind: 'W', exit: 4}},
		{"exit before the breakpoint", with(linear(10, fake.Hang, 0), 3, fake.Exit, 9), []uint64{0x1005}, nil, outcome{kind: 'W', exit: 9}},
		{"kill", with(linear(10, fake.Hang, 0), 3, fake.Kill, 0), []uint64{0x1005}, nil, outcome{fault: "killed by signal"}},
		{"freeze", with(linear(10, fake.Hang, 0), 3, fake.Freeze, 0), []uint64{0x1005}, nil, outcome{fault: "stopped answering"}},
		{"internal error", with(linear(10, fake.Hang, 0), 3, fake.InternalError, 0), []uint64{0x1005}, nil,
			outcome{kind: 'T', signal: 5, pc: 0x1003, health: "KVM internal error"}},
		{"hang: interrupted", linear(10, fake.Hang, 0), []uint64{0x2000}, nil, outcome{kind: 'T', signal: 2, pc: 0x1009, ctxErr: true}},
		{"hang state: interrupted", with(linear(10, fake.Hang, 0), 4, fake.Hang, 0), []uint64{0x1005}, nil,
			outcome{kind: 'T', signal: 2, pc: 0x1004, ctxErr: true}},
		{"lost step is no stop", with(linear(10, fake.Exit, 0), 3, fake.LostStep, 0), []uint64{0x1005}, nil, outcome{kind: 'T', signal: 5, pc: 0x1005}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, _, _ := newGuest(t, tc.prog)
			for _, a := range tc.bps {
				if err := g.Insert(context.Background(), rsp.Software, a); err != nil {
					t.Fatal(err)
				}
			}
			ctx := bounded(t, 100*time.Millisecond)
			start := time.Now()
			st, err := g.Cont(ctx)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("cont took %v", d)
			}
			check(t, g, st, err, tc.want)
		})
	}
}

// TestContBreakpoints follows a run from breakpoint to breakpoint, as the
// engine does: Cont steps off the breakpoint it sits on.
func TestContBreakpoints(t *testing.T) {
	t.Parallel()
	for _, kind := range []rsp.BreakKind{rsp.Software, rsp.Hardware} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			// A loop: 0x10 0x11 0x12 0x10 0x11 0x12 0x13, then exit 5.
			p := fake.Program{End: fake.Exit, ExitCode: 5}
			for _, pc := range []uint64{0x10, 0x11, 0x12, 0x10, 0x11, 0x12, 0x13} {
				p.States = append(p.States, fake.State{PC: pc})
			}
			g, tg, _ := newGuest(t, p)
			ctx := bounded(t, 5*time.Second)
			for _, a := range []uint64{0x10, 0x12} {
				if err := g.Insert(ctx, kind, a); err != nil {
					t.Fatal(err)
				}
			}
			var got []int
			for {
				st, err := g.Cont(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.Exited() {
					break
				}
				got = append(got, tg.Index())
			}
			if want := []int{2, 3, 5}; !slices.Equal(got, want) {
				t.Errorf("stopped at states %v, want %v", got, want)
			}
			if c := g.ExitStatus(); c == nil || *c != 5 {
				t.Errorf("exit status %v, want 5", c)
			}
		})
	}
}

// TestContinueExecutesFirst checks that a raw continue from a PC with a
// breakpoint leaves it before looking for breakpoints.
func TestContinueExecutesFirst(t *testing.T) {
	t.Parallel()
	p := fake.Program{States: []fake.State{{PC: 0x10}, {PC: 0x11}, {PC: 0x10}, {PC: 0x11}}}
	tg, _, err := fake.New(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := bounded(t, 5*time.Second)
	if err := tg.InsertBreakpoint(ctx, rsp.Software, 0x10, 1); err != nil {
		t.Fatal(err)
	}
	st, err := tg.Continue(ctx)
	if err != nil || st.Kind != 'T' || tg.Index() != 2 {
		t.Fatalf("continue: %v, %v at state %d; want T05 at state 2", st, err, tg.Index())
	}
}

func TestLostStepOffBreakpoint(t *testing.T) {
	t.Parallel()
	p := with(linear(10, fake.Exit, 0), 2, fake.LostStep, 0)
	g, _, _ := newGuest(t, p)
	ctx := bounded(t, 5*time.Second)
	for _, a := range []uint64{0x1002, 0x1006} {
		if err := g.Insert(ctx, rsp.Software, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Cont(ctx); err != nil || mustPC(t, g) != 0x1002 {
		t.Fatalf("first cont: %v at %#x", err, g.LastPC())
	}
	// Stepping off 0x1002: the first step is lost, the second moves.
	st, err := g.Cont(ctx)
	if err != nil || st.Kind != 'T' || mustPC(t, g) != 0x1006 {
		t.Fatalf("second cont: %v, %v at %#x; want a stop at 0x1006", st, err, g.LastPC())
	}
	if g.Steps != 2 {
		t.Errorf("steps %d, want 2 (one lost)", g.Steps)
	}
	if !g.HasBreakpoint(0x1002) {
		t.Errorf("breakpoint 0x1002 not re-inserted")
	}
}

func TestWatchpoint(t *testing.T) {
	t.Parallel()
	p := linear(10, fake.Exit, 0)
	// The watchpoint covers [0x3000, 0x3004).
	fake.At(p.States, 2).Mem = map[uint64][]byte{0x2ffe: {9, 9}, 0x3004: {9}} // on either side
	fake.At(p.States, 3).Mem = map[uint64][]byte{0x3000: {1, 2}}              // inside
	fake.At(p.States, 6).Mem = map[uint64][]byte{0x2ffe: {1, 2, 3, 4}}        // over its first bytes
	tests := []struct {
		name string
		cont func(ctx context.Context, g *guest.Guest) (rsp.StopReply, error)
	}{
		{"cont", func(ctx context.Context, g *guest.Guest) (rsp.StopReply, error) { return g.Cont(ctx) }},
		{"step", func(ctx context.Context, g *guest.Guest) (rsp.StopReply, error) {
			for {
				st, err := g.Step(ctx)
				if err != nil || st.Watch != "" || st.Exited() {
					return st, err
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, tg, _ := newGuest(t, p)
			ctx := bounded(t, 5*time.Second)
			if err := g.T.InsertBreakpoint(ctx, rsp.WatchWrite, 0x3000, 4); err != nil {
				t.Fatal(err)
			}
			st, err := tc.cont(ctx, g)
			if err != nil || st.Watch != "watch" || st.WatchAddr != 0x3000 || tg.Index() != 3 {
				t.Fatalf("%v, %v at state %d: want a watch stop at 0x3000 in state 3", st, err, tg.Index())
			}
			if !strings.Contains(st.Raw, "watch:0000000000003000;") {
				t.Errorf("raw %q lacks the zero-padded watch address", st.Raw)
			}
			// x86: the store has happened.
			b, err := g.T.ReadMemory(ctx, 0x3000, 2)
			if err != nil || b[0] != 1 || b[1] != 2 {
				t.Errorf("memory after the watch stop: %x, %v; want 0102", b, err)
			}
			st, err = tc.cont(ctx, g)
			if err != nil || st.WatchAddr != 0x3000 || tg.Index() != 6 {
				t.Fatalf("%v, %v at state %d: want a watch stop in state 6", st, err, tg.Index())
			}
			if err := g.T.RemoveBreakpoint(ctx, rsp.WatchWrite, 0x3000, 4); err != nil {
				t.Fatal(err)
			}
			if st, err := g.Cont(ctx); err != nil || !st.Exited() {
				t.Fatalf("after removing the watchpoint: %v, %v; want the exit", st, err)
			}
		})
	}
}

func TestStopRepliesParse(t *testing.T) {
	t.Parallel()
	p := linear(4, fake.Exit, 0x1ff)
	fake.At(p.States, 1).Mem = map[uint64][]byte{0x10: {1}}
	tg, _, err := fake.New(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := bounded(t, 5*time.Second)
	if err := tg.InsertBreakpoint(ctx, rsp.WatchWrite, 0x10, 1); err != nil {
		t.Fatal(err)
	}
	var replies []rsp.StopReply
	for {
		st, err := tg.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, st)
		if st.Exited() {
			break
		}
	}
	for _, st := range replies {
		parsed, err := rsp.ParseStopReply([]byte(st.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if parsed.String() != st.String() || parsed.Raw != st.Raw || !maps.Equal(parsed.Pairs, st.Pairs) || parsed.ExitCode != st.ExitCode {
			t.Errorf("reply %+v, parsed from its raw text %+v", st, parsed)
		}
	}
	if last := replies[len(replies)-1]; last.ExitCode != 0xff {
		t.Errorf("W code %#x, want the low byte 0xff", last.ExitCode)
	}
}

// TestClosedAfterEnd checks that after an exit or a kill every request
// fails with an error wrapping rsp.ErrClosed.
func TestClosedAfterEnd(t *testing.T) {
	t.Parallel()
	ends := []struct {
		name string
		prog fake.Program
	}{
		{"exit", linear(2, fake.Exit, 1)},
		{"kill", linear(2, fake.Kill, 0)},
		{"machine closed", linear(2, fake.Hang, 0)},
	}
	calls := map[string]func(ctx context.Context, tg *fake.Target) error{
		"pc":        func(ctx context.Context, tg *fake.Target) error { _, err := tg.PC(ctx); return err },
		"registers": func(ctx context.Context, tg *fake.Target) error { _, err := tg.ReadRegisterSet(ctx, "rax"); return err },
		"memory":    func(ctx context.Context, tg *fake.Target) error { _, err := tg.ReadMemory(ctx, 0, 4); return err },
		"physical":  func(ctx context.Context, tg *fake.Target) error { _, err := tg.ReadPhysical(ctx, 0, 4); return err },
		"insert":    func(ctx context.Context, tg *fake.Target) error { return tg.InsertBreakpoint(ctx, rsp.Software, 0, 1) },
		"remove":    func(ctx context.Context, tg *fake.Target) error { return tg.RemoveBreakpoint(ctx, rsp.Software, 0, 1) },
		"step":      func(ctx context.Context, tg *fake.Target) error { _, err := tg.Step(ctx); return err },
		"continue":  func(ctx context.Context, tg *fake.Target) error { _, err := tg.Continue(ctx); return err },
		"resume":    func(ctx context.Context, tg *fake.Target) error { return tg.Resume(ctx) },
		"sstepbits": func(ctx context.Context, tg *fake.Target) error { _, err := tg.SstepBits(ctx); return err },
		"setsstep":  func(ctx context.Context, tg *fake.Target) error { return tg.SetSstep(ctx, 1) },
	}
	for _, end := range ends {
		t.Run(end.name, func(t *testing.T) {
			t.Parallel()
			tg, m, err := fake.New(end.prog)
			if err != nil {
				t.Fatal(err)
			}
			ctx := bounded(t, 5*time.Second)
			if end.name == "machine closed" {
				if err := m.Close(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				tg.Step(ctx)
				_, err := tg.Step(ctx)
				if (err == nil) != (end.name == "exit") {
					t.Fatalf("ending step: %v", err)
				}
			}
			select {
			case <-m.Exited():
			default:
				t.Fatal("Exited not closed")
			}
			for name, call := range calls {
				if err := call(ctx, tg); !errors.Is(err, rsp.ErrClosed) {
					t.Errorf("%s: %v, want an error wrapping rsp.ErrClosed", name, err)
				}
			}
			if _, err := m.Status(ctx); err == nil {
				t.Errorf("Status of an ended process succeeds")
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		prog fake.Program
		want guest.ProcessExit
	}{
		{"exit", with(linear(3, fake.Hang, 0), 1, fake.Exit, 33), guest.ProcessExit{Code: 33}},
		{"kill", with(linear(3, fake.Hang, 0), 1, fake.Kill, 0), guest.ProcessExit{Code: -1, Signal: syscall.SIGKILL}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg, m, err := fake.New(tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.ExitStatus(); ok {
				t.Fatal("exit status before the end")
			}
			tg.Step(bounded(t, time.Second))
			pe, ok := m.ExitStatus()
			if !ok || pe != tc.want {
				t.Errorf("exit status %+v, %v; want %+v", pe, ok, tc.want)
			}
			if err := m.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if pe, _ := m.ExitStatus(); pe != tc.want {
				t.Errorf("Close changed the exit status to %+v", pe)
			}
		})
	}
}

// TestDiagnoseExitNotYetReaped checks a QEMU that ended by itself but
// whose exit status comes a moment after its QMP socket closed (QEMU shutting
// down on an s390x guest panic, seen from the QMP watchdog): the guest
// exited, with its status, not an infrastructure failure (issue 11).
func TestDiagnoseExitNotYetReaped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		diagnose func(g *guest.Guest) error
	}{
		{"diagnose", func(g *guest.Guest) error {
			if f := g.Diagnose(context.Background(), errors.New("continue: the QMP watchdog lost QEMU")); f != nil {
				return f
			}
			return nil
		}},
		{"healthy", func(g *guest.Guest) error {
			if f := g.Healthy(context.Background()); f != nil {
				return f
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := with(linear(3, fake.Hang, 0), 1, fake.Exit, 5)
			p.ReapLag = 50 * time.Millisecond
			g, tg, m := newGuest(t, p)
			tg.Step(bounded(t, time.Second))
			if _, ok := m.ExitStatus(); ok {
				t.Fatal("the fake reaped the process at once: the test tests nothing")
			}
			if err := tc.diagnose(g); err != nil {
				t.Fatalf("a guest that exited by itself diagnosed as %v", err)
			}
			if code := g.ExitStatus(); code == nil || *code != 5 {
				t.Errorf("exit status %v, want 5", code)
			}
		})
	}
}

// TestFreezeBreaksConnection checks a frozen QEMU: the request blocks until
// its context ends, then the connection is broken as rsp.Client leaves it.
func TestFreezeBreaksConnection(t *testing.T) {
	t.Parallel()
	tg, m, err := fake.New(linear(3, fake.Hang, 0))
	if err != nil {
		t.Fatal(err)
	}
	m.Freeze()
	start := time.Now()
	_, err = tg.PC(bounded(t, 50*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("pc of a frozen QEMU: %v after %v", err, time.Since(start))
	}
	if _, err := tg.PC(context.Background()); !errors.Is(err, rsp.ErrClosed) {
		t.Errorf("pc after the broken request: %v, want rsp.ErrClosed", err)
	}
	if _, err := m.Status(bounded(t, 50*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "SIGSTOP") {
		t.Errorf("status of a frozen QEMU: %v", err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pe, _ := m.ExitStatus(); pe != (guest.ProcessExit{Code: -1, Signal: syscall.SIGKILL, Closed: true}) {
		t.Errorf("closing a frozen QEMU: %+v", pe)
	}
}

// TestFreezeRequestTimeout checks that a request with no deadline of its
// own is bounded by the request timeout, as in rsp.Client.
func TestFreezeRequestTimeout(t *testing.T) {
	t.Parallel()
	tg, m, err := fake.New(linear(3, fake.Hang, 0))
	if err != nil {
		t.Fatal(err)
	}
	tg.RequestTimeout = 30 * time.Millisecond
	m.Freeze()
	if _, err := tg.ReadMemory(context.Background(), 0, 4); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "request timeout") {
		t.Errorf("read from a frozen QEMU: %v", err)
	}
}

// TestKillWhileRunning kills QEMU from outside while the guest spins.
func TestKillWhileRunning(t *testing.T) {
	t.Parallel()
	g, _, m := newGuest(t, linear(3, fake.Hang, 0))
	ctx := bounded(t, 5*time.Second)
	type result struct {
		st  rsp.StopReply
		err error
	}
	done := make(chan result)
	go func() {
		st, err := g.Cont(ctx)
		done <- result{st, err}
	}()
	waitStatus(t, ctx, m, "running")
	m.Kill()
	r := <-done
	wantFault(t, r.err, "signal 9")
}

// TestStatusWhileRunning asks for the run state from another goroutine
// while a continue runs, then interrupts it.
func TestStatusWhileRunning(t *testing.T) {
	t.Parallel()
	g, _, m := newGuest(t, linear(3, fake.Hang, 0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() {
		_, err := g.Cont(ctx)
		done <- err
	}()
	waitStatus(t, bounded(t, 5*time.Second), m, "running")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted cont: %v, want context.Canceled", err)
	}
	if st, err := m.Status(context.Background()); st != "debug" || err != nil {
		t.Errorf("status after the interrupt: %q, %v", st, err)
	}
}

// waitStatus asks m for its run state until it is want.
func waitStatus(t *testing.T, ctx context.Context, m *fake.Machine, want string) {
	t.Helper()
	for {
		st, err := m.Status(ctx)
		if err != nil {
			t.Fatalf("waiting for status %s: %v", want, err)
		}
		if st == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("status %s, never %s", st, want)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestInternalErrorStopsVM(t *testing.T) {
	t.Parallel()
	g, _, m := newGuest(t, with(linear(5, fake.Hang, 0), 1, fake.InternalError, 0))
	st, err := g.Step(bounded(t, time.Second))
	if err != nil || st.Kind != 'T' {
		t.Fatalf("step onto the internal error: %v, %v", st, err)
	}
	if !strings.Contains(m.Stderr(), "KVM internal error. Suberror: 1\nemulation failure") {
		t.Errorf("stderr %q", m.Stderr())
	}
	if f := g.Diagnose(context.Background(), nil); f == nil || !strings.Contains(f.What, "internal error") {
		t.Errorf("Diagnose: %v", f)
	}
	// QEMU does not resume a VM in internal-error: no stop reply comes.
	_, err = g.Step(bounded(t, 50*time.Millisecond))
	wantFault(t, err, "internal error")
}

func TestResume(t *testing.T) {
	t.Parallel()
	g, tg, m := newGuest(t, linear(3, fake.Hang, 0))
	ctx := bounded(t, 5*time.Second)
	if err := g.T.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if !tg.Resumed() {
		t.Error("Resumed false")
	}
	if st, err := m.Status(ctx); st != "running" || err != nil {
		t.Errorf("status %q, %v", st, err)
	}
	if _, err := tg.PC(ctx); !errors.Is(err, rsp.ErrRunning) {
		t.Errorf("pc of a resumed target: %v, want rsp.ErrRunning", err)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	tg, _, err := fake.New(linear(3, fake.Hang, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st, err := tg.Step(ctx); !errors.Is(err, context.Canceled) || st.Kind != 0 || tg.Index() != 0 {
		t.Errorf("step with a done context: %v, %v, state %d", st, err, tg.Index())
	}
	if _, err := tg.PC(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("pc with a done context: %v", err)
	}
}
