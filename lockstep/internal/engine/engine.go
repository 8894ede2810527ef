package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/arch"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Phase names what a run is doing, for progress lines.
type Phase string

// The phases of a run.
const (
	PhaseStarting   Phase = "starting"
	PhaseRunning    Phase = "running"
	PhaseStepping   Phase = "stepping"
	PhaseComparing  Phase = "comparing"
	PhaseLocalising Phase = "localising"
	PhaseDone       Phase = "done"
)

// Recorder receives what the engine has to say besides its findings:
// notes for the report and progress. Package lockstep implements it.
type Recorder interface {
	// Note records something the user should know that is not a
	// divergence.
	Note(msg string)
	// Progress reports that sync point k (0-based; -1 before the first)
	// is in phase.
	Progress(phase Phase, k int)
}

// WindowRecorder is a Recorder that also shows a localisation's window
// shrinking: the divergence at sync point k lies between instructions lo
// and hi after sync point k-1.
type WindowRecorder interface {
	Window(k int, lo, hi uint64)
}

// Config is what an engine works from. Nothing in it changes during a run.
type Config struct {
	Scenario *scenario.Scenario
	// Same is true when both sides run one binary: addresses compare raw.
	Same bool
	// NoNoise disables the scenario's learned noise (calibration).
	NoNoise bool
	// Deadline is the run's deadline; waits for sync points keep
	// Timeouts.Reserve back from it.
	Deadline time.Time
	Timeouts guest.Timeouts
	// Launcher starts the traced pairs of the trace engine.
	Launcher guest.Launcher
	// Trace enables the trace engine where it applies (both sides TCG,
	// one x86_64 binary).
	Trace bool
	// TraceObserver, when set, receives the figures of each trace
	// comparison (benchmarks).
	TraceObserver func(TraceStats)
	// TraceStopBefore makes TraceFrom leave the gdbstub pair stopped just
	// before the divergent instruction, neither executing nor describing
	// it (a hold for gdb): the Window's Steps is then the number of
	// instructions before it, and its Divergences are empty.
	TraceStopBefore bool
	Log             *slog.Logger
	Recorder        Recorder
	// OnInject, when set, receives each fault injected into the run's
	// own guests (not into replays).
	OnInject func(Injected)
}

// Engine drives pairs of guests through a scenario.
type Engine struct {
	sc  *scenario.Scenario
	cfg Config
	log *slog.Logger
	rec Recorder

	injMu    sync.Mutex
	inj      map[*guest.Guest]*injState
	injSaved map[*guest.Guest]map[int]*injState
	injStop  map[*guest.Guest]injStop
	// traced counts the instructions the current trace comparison has
	// compared, for progress (read from the recorder's Progress).
	traced atomic.Uint64
}

// Traced returns how many instructions the running (or last) trace
// comparison has compared.
func (e *Engine) Traced() uint64 { return e.traced.Load() }

// New returns an engine for cfg.
func New(cfg Config) *Engine {
	e := &Engine{sc: cfg.Scenario, cfg: cfg, log: cfg.Log, rec: cfg.Recorder}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.rec == nil {
		e.rec = nopRecorder{}
	}
	return e
}

type nopRecorder struct{}

func (nopRecorder) Note(string)         {}
func (nopRecorder) Progress(Phase, int) {}

// Scenario returns the scenario the engine runs.
func (e *Engine) Scenario() *scenario.Scenario { return e.sc }

// PtrSize is the guests' pointer (and word) size: 8 unless the
// architecture says otherwise.
func (e *Engine) PtrSize() int {
	if a, err := arch.Lookup(e.sc.Guests[0].Arch); err == nil && a.PtrSize > 0 {
		return a.PtrSize
	}
	return 8
}

// Same reports whether both sides run one binary.
func (e *Engine) Same() bool { return e.cfg.Same }

func (e *Engine) note(format string, args ...any) { e.rec.Note(fmt.Sprintf(format, args...)) }

// Notef records a note through the engine's recorder.
func (e *Engine) Notef(format string, args ...any) { e.note(format, args...) }

// Logf logs at info level.
func (e *Engine) Logf(format string, args ...any) { e.log.Info(fmt.Sprintf(format, args...)) }

// Progress reports a phase of sync point k.
func (e *Engine) Progress(phase Phase, k int) { e.rec.Progress(phase, k) }

// Window reports a localisation's window (see WindowRecorder), when the
// recorder shows one.
func (e *Engine) Window(k int, lo, hi uint64) {
	if w, ok := e.rec.(WindowRecorder); ok {
		w.Window(k, lo, hi)
	}
}

// WaitBound is how long a side may take to reach sync point sp: the
// point's own timeout, or the rest of the run less a reserve for capture
// and teardown.
func (e *Engine) WaitBound(ctx context.Context, sp *scenario.SyncPoint) time.Duration {
	dl := e.cfg.Deadline
	if d, ok := ctx.Deadline(); ok && (dl.IsZero() || d.Before(dl)) {
		dl = d
	}
	rest := e.sc.Timeout
	if !dl.IsZero() {
		rest = time.Until(dl)
	}
	rest -= e.cfg.Timeouts.Reserve
	rest = max(rest, e.cfg.Timeouts.MinWait)
	if sp.Timeout > 0 && sp.Timeout < rest {
		return sp.Timeout
	}
	return rest
}

// At fills in the sync point of a divergence found at sync point k (-1:
// after the last one).
func (e *Engine) At(k int, d compare.Divergence) compare.Divergence {
	d.Sync = k
	if k >= 0 && k < len(e.sc.Sync) {
		d.SyncName = e.sc.Sync[k].Break
		d.Hit = e.sc.Sync[k].Hit
	}
	return d
}

// PointName names sync point j (0-based) in messages; -1 is boot, the
// guests' first instruction, where localisation of sync point 0 starts.
func PointName(j int) string {
	if j < 0 {
		return "boot"
	}
	return fmt.Sprintf("sync point %d", j+1)
}

// Between names the stretch a localisation of sync point k searches:
// "between sync points 2 and 3", "between boot and sync point 1".
func Between(k int) string {
	if k == 0 {
		return "between boot and sync point 1"
	}
	return fmt.Sprintf("between sync points %d and %d", k, k+1)
}

// locs symbolises one address per side.
func locs(p guest.Pair, pcs [2]uint64) [2]compare.Location {
	return [2]compare.Location{p[0].Loc(pcs[0]), p[1].Loc(pcs[1])}
}
