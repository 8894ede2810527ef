package lockstep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// failedDetach bounds the attempt to restore an attached QEMU that the
// run found dead or not answering.
const failedDetach = 2 * time.Second

// maxLocalizations bounds the localisations of one run between different
// builds: each costs a replay of both guests.
const maxLocalizations = 4

// run is the state of one lockstep run. It is the only writer of res.
type run struct {
	sc   *scenario.Scenario
	opts Options
	log  *slog.Logger
	res  *Result
	to   guest.Timeouts
	syms [2]*symbols.Table
	pair guest.Pair
	eng  *engine.Engine
	// launcher starts the run's guests and any relaunched for localisation.
	launcher guest.Launcher
	start    time.Time
	dir      string
	// localized counts the localisations done.
	localized int
	// noteCount counts each distinct note.
	noteCount map[string]int
	// injMu guards res.Injections: both sides inject concurrently.
	injMu sync.Mutex
	// hold is set when the run is to hold its first divergence for gdb
	// (RunHold): the run directory outlives the run.
	hold *holdFinding
}

// Run launches both guests of the scenario, drives them to every sync
// point in lockstep and returns what it found. The error is non-nil only
// for infrastructure failures (errors.Is(err, ErrInfrastructure)) and
// scenario problems found at run time (*ScenarioError); the returned Result
// is then still filled in as far as the run got, with Outcome set to
// OutcomeError.
func Run(ctx context.Context, sc *scenario.Scenario, opts Options) (*Result, error) {
	r := newRun(sc, opts)
	// A kept, recorded run keeps a recording of where it diverged for
	// `lockstep replay` (rrhold.go).
	keepRR := opts.Keep && (sc.Determinism.Record || sc.Localize.Method == scenario.MethodReplay)
	if keepRR {
		r.hold = &holdFinding{}
	}
	err := r.run(ctx)
	if keepRR && ctx.Err() == nil {
		r.keepRecordings(ctx, err)
	}
	return r.res, err
}

// run executes the run and sets its outcome.
func (r *run) run(ctx context.Context) error {
	err := r.execute(ctx)
	if err != nil {
		var se *ScenarioError
		if !errors.As(err, &se) {
			err = guest.Infra(err)
		}
	}
	r.finish(err)
	return err
}

// newRun prepares a run of sc: the result skeleton.
func newRun(sc *scenario.Scenario, opts Options) *run {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &run{sc: sc, opts: opts, log: log, start: time.Now(), to: guest.DefaultTimeouts()}
	if opts.timeouts != nil {
		r.to = *opts.timeouts
	}
	r.res = &Result{
		Schema: SchemaVersion, Scenario: sc.Name, File: sc.File, Description: sc.Description,
		Expect: string(sc.Expect), Started: r.start, Divergences: []compare.Divergence{},
		Mode: ModeDifferentBuilds,
	}
	if sc.SameBinary() {
		r.res.Mode = ModeSameBinary
	}
	for i := range sc.Sync {
		sp := &sc.Sync[i]
		r.res.Syncs = append(r.res.Syncs, SyncResult{Index: i, Break: sp.Break, Hit: sp.Hit, HitTotal: sp.HitTotal, Status: SyncSkipped})
	}
	for i, g := range sc.Guests {
		r.res.Sides[i] = Side{Label: g.Label, Accel: g.Accel, CPU: g.CPU, Machine: g.Machine,
			Kernel: g.Kernel, Symbols: g.Symbols, QEMU: g.QEMU}
		if g.Attach != nil {
			r.res.Sides[i].Attach = g.Attach.QMP
		}
	}
	return r
}

// execute is the ordered list of steps of a run.
func (r *run) execute(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, r.sc.Timeout, fmt.Errorf("run timed out after %s", r.sc.Timeout))
	defer cancel()
	defer func() { r.teardown(ctx, err) }()
	defer func() {
		// Whatever failed once the run's own time was up failed because
		// of it: say so first ("run timed out after 60s").
		switch {
		case err == nil || ctx.Err() == nil:
		case errors.Is(context.Cause(ctx), context.Canceled):
			// The caller cancelled (Ctrl-C): whatever broke broke because
			// the guests were being stopped.
			err = fmt.Errorf("interrupted: the run was cancelled and both guests stopped (%w)", err)
		case !errors.Is(err, context.Cause(ctx)):
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
	}()
	if err := r.prepare(ctx); err != nil {
		return err
	}
	for k := range r.sc.Sync {
		cont, err := r.syncPoint(ctx, k)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("sync point %d: %w", k+1, context.Cause(ctx))
		}
		if err != nil || !cont {
			return err
		}
	}
	if r.sc.AnyAttached() {
		// An attached guest is not lockstep's to run to its end.
		r.Note("attached guests are not run to their end after the last sync point")
		return nil
	}
	states, divs, err := r.eng.Finish(ctx, r.pair)
	if err != nil {
		return err
	}
	for i, st := range states {
		r.res.Sides[i].State = SideState(st)
	}
	r.record(-1, divs)
	return nil
}

// prepare checks the scenario's files and symbols, makes the run
// directory, launches both guests and readies them: everything before the
// first sync point.
func (r *run) prepare(ctx context.Context) (err error) {
	if r.syms, err = checkScenario(r.sc, r.opts.Symbols); err != nil {
		return err
	}
	// A cpu or machine the QEMU binary does not know is the scenario's
	// mistake: refuse it before starting anything, as validate does.
	if r.opts.launcher == nil && !r.opts.noModelCheck {
		if errs := checkModels(ctx, r.sc); len(errs) > 0 {
			return &ScenarioError{Err: errors.Join(errs...)}
		}
	}
	// Short: the gdbstub and QMP sockets live below it, and a unix socket
	// path is limited to 107 bytes.
	if r.dir, err = os.MkdirTemp(r.opts.RunDir, "lockstep-"); err != nil {
		return guest.Infraf("run directory: %w", err)
	}
	if r.opts.Keep {
		r.Note(fmt.Sprintf("run directory kept at %s", r.dir))
	}
	r.launcher = r.opts.launcher
	if r.launcher == nil {
		r.launcher = &guest.QEMU{Dir: r.dir, Keep: r.opts.Keep, Logger: r.opts.Logger,
			Determinism: r.sc.Determinism, Timeouts: r.to, Budget: r.opts.QEMUSlots}
	}
	deadline, _ := ctx.Deadline()
	r.eng = engine.New(engine.Config{
		Scenario: r.sc, Same: r.sc.SameBinary(), NoNoise: r.opts.NoNoise, Deadline: deadline,
		Timeouts: r.to, Launcher: r.launcher, Trace: !r.opts.NoTraceEngine && !r.sc.AnyAttached(),
		TraceObserver: r.opts.traceObserver, Log: r.log, Recorder: r, OnInject: r.injected,
	})
	r.Progress(engine.PhaseStarting, -1)
	if err := r.launch(ctx); err != nil {
		return err
	}
	if err := r.checkRegisters(); err != nil {
		return err
	}
	return r.applyDeterminism(ctx)
}

// launch starts both guests concurrently and attaches to them.
func (r *run) launch(ctx context.Context) error {
	p, err := guest.LaunchPair(ctx, r.launcher, [2]scenario.Guest(r.sc.Guests), r.syms, "")
	if err != nil {
		return err
	}
	r.pair = p
	for i, g := range p {
		if g.IsAttached() {
			r.res.Sides[i].Accel = g.Spec.Accel
		}
		r.res.Sides[i].QEMU = g.M.Binary()
		r.res.Sides[i].Version = g.M.Version()
		r.res.Sides[i].Command = g.M.CommandLine()
	}
	return nil
}

// teardown closes both guests, whatever happened, with its own bound so
// that a cancelled run still kills its guests, and records how each ended.
func (r *run) teardown(ctx context.Context, runErr error) {
	var fault *guest.Fault
	errors.As(runErr, &fault)
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.to.Teardown)
	defer cancel()
	for i, g := range r.pair {
		if g == nil {
			continue
		}
		side := &r.res.Sides[i]
		killed := fault != nil && fault.Index == i && fault.Tag == g.Tag
		if g.IsAttached() {
			r.detach(tctx, i, g, killed)
			continue
		}
		if pe, ok := g.M.ExitStatus(); ok && pe.Signal != 0 && !pe.Closed {
			killed = true
		}
		if err := g.Close(tctx); err != nil {
			r.log.Warn("teardown", "side", g.Name(), "err", err)
		}
		side.SerialTail = g.SerialTail(20)
		switch {
		case killed:
			side.State = StateKilled
		case g.Exited():
			side.State = SideState(g.Ended())
			side.ExitCode = g.ExitStatus()
		}
	}
	if !r.opts.Keep && r.dir != "" && r.hold == nil {
		os.RemoveAll(r.dir)
	}
}

// injected records a fault injected into one of the run's guests.
func (r *run) injected(in engine.Injected) {
	r.injMu.Lock()
	defer r.injMu.Unlock()
	si := &r.sc.Inject[in.Index]
	r.res.Injections = append(r.res.Injections, Injection{Index: in.Index, Side: scenario.SideNames[in.Side],
		Where: si.Where(), Set: si.What(), Sync: in.Sync, PC: in.PC})
}

// injectedBefore reports whether a function injection fired while the
// guests ran to sync point k (stepping from k-1 would not apply it).
func (r *run) injectedBefore(k int) bool {
	r.injMu.Lock()
	defer r.injMu.Unlock()
	for _, in := range r.res.Injections {
		if in.Sync == k && r.sc.Inject[in.Index].Sync < 0 {
			return true
		}
	}
	return false
}

// checkRegisters checks, as soon as both target descriptions are known
// and before any guest runs, that every register and group the scenario
// compares exists on each side.
func (r *run) checkRegisters() error {
	var errs []error
	seen := map[string]bool{}
	for i := range r.sc.Sync {
		field := fmt.Sprintf("sync[%d].compare.registers", i)
		for _, g := range r.pair {
			if _, err := engine.RegNames(g.T.Layout(), r.sc.Sync[i].Compare); err != nil {
				msg := fmt.Sprintf("%s: guest %s: %v", r.sc.PosOf(field), g.Name(), err)
				if !seen[msg] {
					seen[msg] = true
					errs = append(errs, errors.New(msg))
				}
			}
		}
	}
	for i, in := range r.sc.Inject {
		g := r.pair[in.Side]
		for _, reg := range in.Regs {
			pos := reg.Pos
			if pos.Line == 0 {
				pos = r.sc.PosOf(fmt.Sprintf("inject[%d].set", i))
			}
			lr, ok := g.T.Layout().Lookup(reg.Name)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: guest %s has no register %q", pos, g.Name(), reg.Name))
			case lr.BitSize > 0 && lr.BitSize < 64 && reg.Value>>uint(lr.BitSize) != 0:
				// Writing it would drop the high bits, and the report
				// would name a value the guest never had.
				errs = append(errs, fmt.Errorf("%s: %s=%#x does not fit guest %s's %d-bit register %s",
					pos, reg.Name, reg.Value, g.Name(), lr.BitSize, lr.Name))
			}
		}
	}
	if len(errs) > 0 {
		return &ScenarioError{Err: errors.Join(errs...)}
	}
	return nil
}

// applyDeterminism sets the single-step mask on each side to what the
// scenario asks for, where the accelerator supports it, and notes the rest.
func (r *run) applyDeterminism(ctx context.Context) error {
	for _, g := range r.pair {
		notes, err := g.ApplySstep(ctx, r.sc.Determinism.Sstep)
		if err != nil {
			return err
		}
		for _, n := range notes {
			r.Note(n)
		}
		if r.sc.Determinism.Icount != "" && g.Spec.Accel == scenario.AccelKVM {
			r.Note(fmt.Sprintf("guest %s: icount is TCG only; not applied under kvm", g.Name()))
		}
	}
	return nil
}

// detach leaves a guest lockstep attached to: breakpoints out, its own
// gdbstub stopped, running or paused as the scenario says. It never ends
// the QEMU. A QEMU that failed (the run's fault) is left alone after a
// best-effort detach, and recorded as killed.
func (r *run) detach(ctx context.Context, i int, g *guest.Guest, failed bool) {
	side := &r.res.Sides[i]
	if failed {
		// A QEMU that died or stopped answering will not answer now
		// either: try, briefly, and leave it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, failedDetach)
		defer cancel()
	}
	if err := g.Close(ctx); err != nil {
		r.log.Warn("detach", "side", g.Name(), "err", err)
		if !failed {
			r.Note(fmt.Sprintf("guest %s: detaching from the running QEMU: %v", g.Name(), err))
		}
	}
	switch {
	case failed:
		side.State = StateKilled
	case g.Exited():
		side.State = StateExited
	default:
		side.State = StateDetached
		if a, ok := g.M.(guest.Attacher); ok {
			side.OnExit = a.LeftAs()
		}
	}
	// Breakpoints and the step mask are restored; what an injection
	// wrote is the guest's state now, and the guest ran on from it.
	r.injMu.Lock()
	var set []string
	for _, in := range r.res.Injections {
		if in.Side == scenario.SideNames[i] {
			set = append(set, in.Set)
		}
	}
	r.injMu.Unlock()
	if len(set) > 0 {
		r.Note(fmt.Sprintf("guest %s: what the injections set (%s) stays in the running QEMU lockstep attached to: it is not undone",
			g.Name(), strings.Join(set, "; ")))
	}
}
