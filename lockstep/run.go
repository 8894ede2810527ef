package lockstep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/internal/localize"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Options tune a run. The zero value is usable.
type Options struct {
	// RunDir is the parent of the run directory; "" is os.TempDir().
	RunDir string
	// Keep retains the run directory: serial logs, QEMU command lines, QMP
	// and RSP transcripts.
	Keep bool
	// Logger receives progress and the QEMU command lines; nil discards.
	Logger *slog.Logger
	// Progress, when set, is called as the run advances.
	Progress func(Progress)
	// NoNoise disables the scenario's learned noise (used by calibration,
	// which must see every difference).
	NoNoise bool
	// NoTraceEngine compares step windows and localises through gdbstub
	// single steps only, never with QEMU's instruction trace.
	NoTraceEngine bool

	// launcher replaces QEMU (tests run the engine on fake targets).
	launcher guest.Launcher
	// timeouts replaces guest.DefaultTimeouts (tests shorten them).
	timeouts *guest.Timeouts
	// traceObserver receives the figures of each trace comparison
	// (benchmarks).
	traceObserver func(engine.TraceStats)
}

// Progress is a snapshot of a run for a progress line.
type Progress struct {
	Sync, Syncs int    // 1-based sync point being worked on, and how many
	Phase       string // "starting", "running", "stepping", "comparing", "localising", "done"
	Steps       int
	StepsPerSec float64
}

// ErrInfrastructure marks failures of the machinery rather than findings
// about the guests: QEMU missing, a guest that failed to start, a QEMU that
// died, crashed or stopped answering, the run's own timeout. The CLI maps
// it to exit status 3 (125 with --bisect).
var ErrInfrastructure = guest.ErrInfrastructure

// ScenarioError is a problem with the scenario found at run time, such as
// a symbol that does not resolve: a usage error (exit status 2).
type ScenarioError = guest.ScenarioError

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
}

// Run launches both guests of the scenario, drives them to every sync
// point in lockstep and returns what it found. The error is non-nil only
// for infrastructure failures (errors.Is(err, ErrInfrastructure)) and
// scenario problems found at run time (*ScenarioError); the returned Result
// is then still filled in as far as the run got, with Outcome set to
// OutcomeError.
func Run(ctx context.Context, sc *scenario.Scenario, opts Options) (*Result, error) {
	r := newRun(sc, opts)
	err := r.execute(ctx)
	if err != nil {
		var se *ScenarioError
		if !errors.As(err, &se) {
			err = guest.Infra(err)
		}
	}
	r.finish(err)
	return r.res, err
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
		r.res.Syncs = append(r.res.Syncs, SyncResult{Index: i, Break: sp.Break, Hit: sp.Hit, Status: SyncSkipped})
	}
	for i, g := range sc.Guests {
		r.res.Sides[i] = Side{Label: g.Label, Accel: g.Accel, CPU: g.CPU, Machine: g.Machine,
			Kernel: g.Kernel, Symbols: g.Symbols, QEMU: g.QEMU}
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
		if err != nil && ctx.Err() != nil && !errors.Is(err, context.Cause(ctx)) {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
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
	if r.syms, err = checkScenario(r.sc); err != nil {
		return err
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
			Determinism: r.sc.Determinism, Timeouts: r.to}
	}
	deadline, _ := ctx.Deadline()
	r.eng = engine.New(engine.Config{
		Scenario: r.sc, Same: r.sc.SameBinary(), NoNoise: r.opts.NoNoise, Deadline: deadline,
		Timeouts: r.to, Launcher: r.launcher, Trace: !r.opts.NoTraceEngine,
		TraceObserver: r.opts.traceObserver, Log: r.log, Recorder: r,
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
		killed := fault != nil && fault.Index == i
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
			side.State = StateExited
			side.ExitCode = g.ExitStatus()
		}
	}
	if !r.opts.Keep && r.dir != "" {
		os.RemoveAll(r.dir)
	}
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

// syncPoint drives both sides to sync point k, compares them there, saves
// a checkpoint, localises and steps the window as the scenario asks. It
// reports whether the run can go on to the next point.
func (r *run) syncPoint(ctx context.Context, k int) (bool, error) {
	sp := &r.sc.Sync[k]
	sr := &r.res.Syncs[k]
	t0 := time.Now()
	defer func() { sr.Duration = time.Since(t0) }()

	pt, err := r.eng.Point(ctx, r.pair, k)
	for i := range pt.Arrivals {
		sr.Reached[i] = pt.Arrivals[i].Reached()
	}
	sr.PC = pt.PC
	r.record(k, pt.Divergences)
	if err != nil {
		return false, err
	}
	if !pt.Reached() {
		sr.Status = SyncUnreached
		if len(pt.Divergences) == 0 || onlyCallPath(pt.Divergences) {
			r.Note(fmt.Sprintf("neither side reached sync point %d (%s), so nothing was compared there: a %s; b %s",
				k+1, sp.Break, pt.Arrivals[0].Detail, pt.Arrivals[1].Detail))
		}
		return false, nil
	}
	sr.Uncompared = pt.Uncompared
	// Save this point before a step window moves the guests on, so that a
	// later divergence can localise from here without a restart.
	if localize.WantCheckpoint(r.sc, k, time.Since(r.start)) {
		t1 := time.Now()
		if err := localize.SaveBoth(ctx, r.pair, k); err != nil {
			if ctx.Err() != nil {
				return false, err
			}
			r.Note(fmt.Sprintf("checkpoint at sync point %d failed (%v); localisation will restart the guests", k+1, err))
		} else {
			r.eng.Logf("checkpoint at sync point %d took %s", k+1, time.Since(t1).Round(time.Millisecond))
		}
	}
	if r.shouldLocalize(k, pt.Divergences) {
		if err := r.localize(ctx, k, pt.Divergences); err != nil {
			return false, err
		}
	}
	if sp.Step > 0 {
		w, err := r.eng.StepWindow(ctx, r.pair, k)
		sr.Steps = w.Steps
		r.record(k, w.Divergences)
		if err != nil {
			return false, err
		}
	}
	sr.Status = r.status(k)
	return true, nil
}

func onlyCallPath(divs []compare.Divergence) bool {
	for _, d := range divs {
		if d.Kind != compare.KindCallPath {
			return false
		}
	}
	return true
}

// status is the status of sync point k, which both sides reached, from
// what was recorded there.
func (r *run) status(k int) SyncStatus {
	sr := &r.res.Syncs[k]
	switch {
	case r.realAt(k):
		return SyncDiverge
	case len(sr.Uncompared) > 0:
		return SyncIncomplete
	case sr.Divergences > 0:
		return SyncNoise
	}
	return SyncMatch
}

// realAt reports whether a divergence that is not noise was recorded at
// sync point k.
func (r *run) realAt(k int) bool {
	for _, d := range r.res.Divergences {
		if d.Sync == k && !d.Noise {
			return true
		}
	}
	return false
}

// shouldLocalize reports whether sync point k, with divergences found,
// is the first divergent point after a matching one, which is where
// localisation starts.
func (r *run) shouldLocalize(k int, found []compare.Divergence) bool {
	if !r.sc.Localize.Enabled {
		return false
	}
	real := false
	for _, d := range found {
		if !d.Noise && (d.Kind == compare.KindRegister || d.Kind == compare.KindMemory || d.Kind == compare.KindCallPath) {
			real = true
		}
	}
	if !real {
		return false
	}
	if k == 0 {
		r.Note(fmt.Sprintf("sync point 1 (%s) diverged: localisation starts from the last matching sync point, and there is none; add an earlier sync point (e.g. the kernel entry) to localise", r.sc.Sync[0].Break))
		return false
	}
	prev := r.res.Syncs[k-1]
	if r.sc.SameBinary() {
		// Stepping compares registers from k-1 on: they must agree there.
		return prev.Status == SyncMatch || prev.Status == SyncNoise || prev.Status == SyncIncomplete
	}
	// Between builds each window's function entries are compared on their
	// own, so every divergent point after one both sides reached counts.
	if r.localized >= maxLocalizations {
		r.Note(fmt.Sprintf("sync point %d: not localised; a run localises at most %d sync points", k+1, maxLocalizations))
		return false
	}
	return prev.Reached[0] && prev.Reached[1]
}

// localize finds where the guests parted between sync points k-1 and k,
// on guests rewound by snapshot when the run has one of k-1, by relaunch
// otherwise.
func (r *run) localize(ctx context.Context, k int, found []compare.Divergence) (err error) {
	r.localized++
	rw := r.rewinder(ctx, k)
	l := &localize.Localizer{E: r.eng, RW: rw}
	divs, err := l.At(ctx, k, found)
	if cerr := rw.Close(ctx); err == nil {
		err = cerr
	}
	r.record(k, divs)
	return err
}

// rewinder picks how localisation gets back to sync point k-1.
func (r *run) rewinder(ctx context.Context, k int) localize.Rewinder {
	relaunch := &localize.Relaunch{Engine: r.eng, Launcher: r.launcher,
		Specs: [2]scenario.Guest(r.sc.Guests), Syms: r.syms}
	if localize.Mode(r.sc) == scenario.CheckpointRestart || !localize.HasBoth(ctx, r.pair, k-1) {
		return relaunch
	}
	if err := localize.SaveBoth(ctx, r.pair, k); err != nil {
		r.Note(fmt.Sprintf("localisation: could not save sync point %d to come back to (%v); restarting the guests instead", k+1, err))
		return relaunch
	}
	return &localize.Snapshot{Pair: r.pair, Here: k, Log: r.eng.Logf}
}

// record adds divergences found at sync point k (-1: after the last).
func (r *run) record(k int, divs []compare.Divergence) {
	for _, d := range divs {
		if k >= 0 && k < len(r.res.Syncs) {
			r.res.Syncs[k].Divergences++
		}
		r.res.Divergences = append(r.res.Divergences, d)
	}
}

// Note records a note for the report (engine.Recorder).
func (r *run) Note(msg string) { r.res.Notes = append(r.res.Notes, msg) }

// Progress reports progress to Options.Progress (engine.Recorder).
func (r *run) Progress(phase engine.Phase, k int) {
	if r.opts.Progress == nil {
		return
	}
	p := Progress{Sync: k + 1, Syncs: len(r.sc.Sync), Phase: string(phase), Steps: r.pair.Steps()}
	if d := time.Since(r.start).Seconds(); d > 0 {
		p.StepsPerSec = float64(p.Steps) / d
	}
	r.opts.Progress(p)
}

// finish sets the outcome from what was found. A run passes only when it
// matched its expectation with everything compared: a divergence where
// one was expected, or no divergence with every sync point reached and
// compared where identical was expected.
func (r *run) finish(err error) {
	r.res.Duration = time.Since(r.start)
	r.res.Stats.SyncPoints = len(r.sc.Sync)
	r.res.Stats.Steps = r.pair.Steps()
	if d := r.res.Duration.Seconds(); d > 0 && r.res.Stats.Steps > 0 {
		r.res.Stats.StepsPerSec = float64(r.res.Stats.Steps) / d
	}
	for _, g := range r.pair {
		if g == nil {
			continue
		}
		r.res.Stats.RSPPackets += g.T.Packets()
		if g.LostSteps > 0 {
			r.Note(fmt.Sprintf("guest %s: %d single steps executed nothing and were repeated", g.Name(), g.LostSteps))
		}
	}
	if err != nil {
		r.res.Outcome = OutcomeError
		r.res.Error = err.Error()
		r.res.Passed = false
		return
	}
	real := 0
	for _, d := range r.res.Divergences {
		if !d.Noise {
			real++
		}
	}
	complete := len(r.res.Syncs) > 0
	for _, s := range r.res.Syncs {
		if s.Status != SyncMatch && s.Status != SyncNoise && s.Status != SyncDiverge {
			complete = false
		}
	}
	switch {
	case real > 0:
		r.res.Outcome = OutcomeDiverged
	case complete:
		r.res.Outcome = OutcomeIdentical
	default:
		r.res.Outcome = OutcomeIncomplete
	}
	switch r.sc.Expect {
	case scenario.ExpectDiverge:
		r.res.Passed = r.res.Outcome == OutcomeDiverged
	default:
		r.res.Passed = r.res.Outcome == OutcomeIdentical
	}
}
