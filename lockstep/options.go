package lockstep

import (
	"log/slog"

	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
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
	// Symbols, when set, shares loaded symbol tables with the other runs
	// that use the same cache (a suite's scenarios): each file is read
	// once while it does not change.
	Symbols *symbols.Cache
	// QEMUSlots, when set, is this run's share of a bound on the QEMU
	// processes alive at once across runs (a suite's scenarios, lockstep
	// suite --qemus; qemu.Budget.Admit): every QEMU the run starts,
	// localisation pairs included, takes a slot, waiting when none is
	// free.
	QEMUSlots *qemu.Owner

	// launcher replaces QEMU (tests run the engine on fake targets).
	launcher guest.Launcher
	// afterRecord, when set, sees the replay localiser's recordings once
	// complete (tests corrupt them).
	afterRecord func(files [2]string)
	// timeouts replaces guest.DefaultTimeouts (tests shorten them).
	timeouts *guest.Timeouts
	// traceObserver receives the figures of each trace comparison
	// (benchmarks).
	traceObserver func(engine.TraceStats)
	// noModelCheck skips checking cpu and machine against the QEMU
	// binary before starting (tests of what QEMU says when it refuses).
	noModelCheck bool
}

// Progress is a snapshot of a run for a progress line.
type Progress struct {
	Sync, Syncs int    // 1-based sync point being worked on, and how many
	Phase       string // "starting", "running", "stepping", "comparing", "localising", "done"
	Steps       int
	StepsPerSec float64
	// Window, when Window[1] > 0, is the instruction window (counted from
	// the previous sync point) a replay bisection has narrowed the
	// divergence to.
	Window [2]uint64
	// Traced is how many instructions the running comparison of QEMU's
	// instruction traces has compared (trace engine), or 0.
	Traced uint64
}

// ErrInfrastructure marks failures of the machinery rather than findings
// about the guests: QEMU missing, a guest that failed to start, a QEMU that
// died, crashed or stopped answering, the run's own timeout. The CLI maps
// it to exit status 3 (125 with --bisect).
var ErrInfrastructure = guest.ErrInfrastructure

// ScenarioError is a problem with the scenario found at run time, such as
// a symbol that does not resolve: a usage error (exit status 2).
type ScenarioError = guest.ScenarioError
