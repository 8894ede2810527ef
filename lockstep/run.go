package lockstep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/rsp"
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
	// Noise overrides the scenario's learned noise (used by calibration,
	// which must see every difference).
	NoNoise bool
}

// Progress is a snapshot of a run for a progress line.
type Progress struct {
	Sync, Syncs int    // 1-based sync point being worked on, and how many
	Phase       string // "starting", "running", "stepping", "comparing", "localising", "done"
	Steps       int
	StepsPerSec float64
}

// ErrInfrastructure marks failures of the machinery rather than findings
// about the guests: QEMU missing, a guest that failed to start, a lost
// gdbstub. The CLI maps it to exit status 3 (125 with --bisect).
var ErrInfrastructure = errors.New("infrastructure failure")

type infraError struct{ err error }

func (e *infraError) Error() string    { return e.err.Error() }
func (e *infraError) Unwrap() []error  { return []error{e.err, ErrInfrastructure} }
func infra(err error) error            { return &infraError{err} }
func infraf(f string, a ...any) error  { return infra(fmt.Errorf(f, a...)) }
func (r *run) note(f string, a ...any) { r.res.Notes = append(r.res.Notes, fmt.Sprintf(f, a...)) }
func (r *run) logf(f string, a ...any) { r.log.Info(fmt.Sprintf(f, a...)) }
func (r *run) progress(phase string, k int) {
	if r.opts.Progress == nil {
		return
	}
	p := Progress{Sync: k + 1, Syncs: len(r.sc.Sync), Phase: phase, Steps: r.steps()}
	if d := time.Since(r.start).Seconds(); d > 0 {
		p.StepsPerSec = float64(p.Steps) / d
	}
	r.opts.Progress(p)
}

// run is the state of one lockstep run.
type run struct {
	sc    *scenario.Scenario
	opts  Options
	log   *slog.Logger
	res   *Result
	sides [2]*side
	same  bool // one binary on both sides: compare addresses raw
	start time.Time
	dir   string
	// localized counts the localisations done.
	localized int
}

func (r *run) steps() int { return r.sides[0].steps + r.sides[1].steps }

// Run launches both guests of the scenario, drives them to every sync
// point in lockstep and returns what it found. The error is non-nil only
// for infrastructure failures (errors.Is(err, ErrInfrastructure)); the
// returned Result is then still filled in as far as the run got, with
// Outcome set to OutcomeError.
func Run(ctx context.Context, sc *scenario.Scenario, opts Options) (*Result, error) {
	r := newRun(sc, opts)
	err := r.execute(ctx)
	r.finish(err)
	if err != nil {
		var se *ScenarioError
		if !errors.Is(err, ErrInfrastructure) && !errors.As(err, &se) {
			err = infra(err)
		}
		return r.res, err
	}
	return r.res, nil
}

// newRun prepares a run of sc: the result skeleton and the two sides.
func newRun(sc *scenario.Scenario, opts Options) *run {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &run{sc: sc, opts: opts, log: log, start: time.Now(), same: sc.SameBinary()}
	r.res = &Result{
		Schema: SchemaVersion, Scenario: sc.Name, File: sc.File, Description: sc.Description,
		Expect: string(sc.Expect), Started: r.start, Divergences: []compare.Divergence{},
	}
	r.res.Mode = "different-builds"
	if r.same {
		r.res.Mode = "same-binary"
	}
	for i := range r.sc.Sync {
		sp := &r.sc.Sync[i]
		r.res.Syncs = append(r.res.Syncs, SyncResult{Index: i, Break: sp.Break, Hit: sp.Hit, Status: "skipped"})
	}
	for i := range r.sides {
		g := sc.Guests[i]
		r.sides[i] = &side{idx: i, guest: g, bps: map[uint64]rsp.BreakKind{}}
		r.res.Sides[i] = Side{Label: g.Label, Accel: g.Accel, CPU: g.CPU, Machine: g.Machine,
			Kernel: g.Kernel, Symbols: g.Symbols, QEMU: g.QEMU}
	}
	return r
}

// launchBoth starts both guests concurrently in dir and attaches to them.
// The guests' lifetime is ctx, not the errgroup's, which ends when both
// have started; a failed start is torn down by the caller's teardown.
func (r *run) launchBoth(ctx context.Context, dir string) error {
	var g errgroup.Group
	for _, s := range r.sides {
		g.Go(func() error { return s.launch(ctx, dir, r.opts, r.sc.Determinism) })
	}
	if err := g.Wait(); err != nil {
		return infra(err)
	}
	for i, s := range r.sides {
		r.res.Sides[i].QEMU = s.inst.Argv[0]
		r.res.Sides[i].Version = s.inst.Version
		r.res.Sides[i].Command = s.inst.CommandLine
	}
	return nil
}

// execute is the ordered list of steps of a run.
func (r *run) execute(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, r.sc.Timeout)
	defer cancel()

	if err := r.loadSymbols(); err != nil {
		return err
	}
	// Short: the gdbstub and QMP sockets live below it, and a unix socket
	// path is limited to 107 bytes.
	dir, err := os.MkdirTemp(r.opts.RunDir, "lockstep-")
	if err != nil {
		return infraf("run directory: %w", err)
	}
	r.dir = dir
	if r.opts.Keep {
		r.note("run directory kept at %s", dir)
	}
	defer func() {
		// Teardown runs whatever happened, with its own bound so that a
		// cancelled run still kills its guests.
		tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer tcancel()
		for i, s := range r.sides {
			r.res.Sides[i].ExitCode = s.exitStatus()
			if cerr := s.close(tctx); cerr != nil && err == nil {
				r.log.Warn("teardown", "side", s.name(), "err", cerr)
			}
			r.res.Sides[i].ExitCode = s.exitStatus()
			r.res.Sides[i].SerialTail = s.serialTail(20)
			if s.exited {
				r.res.Sides[i].State = "exited"
			}
		}
		if !r.opts.Keep {
			os.RemoveAll(dir)
		}
	}()

	r.progress("starting", -1)
	if err := r.launchBoth(ctx, dir); err != nil {
		return err
	}
	if err := r.checkRegisters(); err != nil {
		return err
	}
	if err := r.applyDeterminism(ctx); err != nil {
		return err
	}

	for k := range r.sc.Sync {
		cont, err := r.syncPoint(ctx, k)
		if err == nil && ctx.Err() != nil {
			err = infraf("sync point %d: %w", k+1, context.Cause(ctx))
		}
		if err != nil {
			return err
		}
		if !cont {
			return nil
		}
	}
	return r.finishGuests(ctx)
}

// loadSymbols loads each side's symbol table and checks that every
// symbol the scenario names resolves.
func (r *run) loadSymbols() error {
	tables, err := checkScenario(r.sc)
	if err != nil {
		return err
	}
	for i := range 2 {
		r.sides[i].syms = tables[i]
	}
	return nil
}

// ScenarioError is a problem with the scenario found at run time, such as
// a symbol that does not resolve: a usage error (exit status 2).
type ScenarioError struct{ Err error }

func (e *ScenarioError) Error() string { return e.Err.Error() }
func (e *ScenarioError) Unwrap() error { return e.Err }

// checkRegisters checks, as soon as both target descriptions are known
// and before any guest runs, that every register and group the scenario
// compares exists on each side.
func (r *run) checkRegisters() error {
	var errs []error
	seen := map[string]bool{}
	for i := range r.sc.Sync {
		field := fmt.Sprintf("sync[%d].compare.registers", i)
		for _, s := range r.sides {
			if _, err := regNames(s.rsp.Layout(), r.sc.Sync[i].Compare); err != nil {
				msg := fmt.Sprintf("%s: guest %s: %v", r.sc.PosOf(field), s.name(), err)
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
	if err := r.applySstep(ctx, r.sides, true); err != nil {
		return err
	}
	if r.sc.Determinism.Icount != "" {
		for _, s := range r.sides {
			if s.guest.Accel == scenario.AccelKVM {
				r.note("guest %s: icount is TCG only; not applied under kvm", s.name())
			}
		}
	}
	return nil
}

// applySstep sets the single-step mask of both sides.
func (r *run) applySstep(ctx context.Context, sides [2]*side, notes bool) error {
	want := map[string]bool{}
	for _, b := range r.sc.Determinism.Sstep {
		want[b] = true
	}
	for _, s := range sides {
		bits, err := s.rsp.SstepBits(ctx)
		if errors.Is(err, rsp.ErrUnsupported) {
			if notes {
				r.note("guest %s: the gdbstub has no qqemu.sstepbits; stepping semantics are the stub's own", s.name())
			}
			continue
		}
		if err != nil {
			return infraf("guest %s: sstepbits: %w", s.name(), err)
		}
		mask := bits["ENABLE"]
		for _, name := range []string{scenario.SstepNoIRQ, scenario.SstepNoTimer} {
			if !want[name] {
				continue
			}
			bit, ok := bits[upper(name)]
			if !ok {
				if notes {
					r.note("guest %s: sstep %s unsupported under %s; not applied", s.name(), name, s.guest.Accel)
				}
				continue
			}
			mask |= bit
		}
		if err := s.rsp.SetSstep(ctx, mask); err != nil {
			return infraf("guest %s: set sstep %#x: %w", s.name(), mask, err)
		}
	}
	return nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// finish sets the outcome from what was found.
func (r *run) finish(err error) {
	r.res.Duration = time.Since(r.start)
	r.res.Stats.SyncPoints = len(r.sc.Sync)
	r.res.Stats.Steps = r.steps()
	if d := r.res.Duration.Seconds(); d > 0 && r.res.Stats.Steps > 0 {
		r.res.Stats.StepsPerSec = float64(r.res.Stats.Steps) / d
	}
	for _, s := range r.sides {
		if s.rsp != nil {
			r.res.Stats.RSPPackets += s.rsp.Packets()
		}
		if s.lostSteps > 0 {
			r.note("guest %s: %d single steps executed nothing and were repeated", s.name(), s.lostSteps)
		}
	}
	if err != nil {
		r.res.Outcome = OutcomeError
		r.res.Error = err.Error()
		return
	}
	real := 0
	for _, d := range r.res.Divergences {
		if !d.Noise {
			real++
		}
	}
	r.res.Outcome = OutcomeIdentical
	if real > 0 {
		r.res.Outcome = OutcomeDiverged
	}
	switch r.sc.Expect {
	case scenario.ExpectDiverge:
		r.res.Passed = r.res.Outcome == OutcomeDiverged
	default:
		r.res.Passed = r.res.Outcome == OutcomeIdentical
	}
}

// diverge records a divergence at sync point k.
func (r *run) diverge(k int, d compare.Divergence) {
	d.Sync = k
	if k >= 0 && k < len(r.sc.Sync) {
		d.SyncName = r.sc.Sync[k].Break
		d.Hit = r.sc.Sync[k].Hit
		r.res.Syncs[k].Divergences++
	}
	r.res.Divergences = append(r.res.Divergences, d)
}
