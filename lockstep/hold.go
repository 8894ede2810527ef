package lockstep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/internal/localize"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/scenario"
)

// MaxHoldSteps bounds the single steps a hold takes from a sync point to
// the localised instruction (about a thousand a second through the
// gdbstub), where the trace engine cannot take the guests there. A
// divergence deeper than that is held at its sync point.
const MaxHoldSteps = 200_000

// traceAbove is the depth from which a hold goes to the localised
// instruction with the trace engine (a breakpoint and its hit count, from
// QEMU's instruction log), where it applies, rather than by single steps:
// launching the traced pair costs about as much as this many steps.
const traceAbove = 10_000

// HoldScriptName is the gdb script a hold writes into the run directory.
const HoldScriptName = "hold.gdb"

// HoldPlace says where a held pair stands.
type HoldPlace string

// The places a pair is held at.
const (
	// HeldAtInstruction: each side stopped at the localised instruction,
	// before executing it (its PC is the report's PC).
	HeldAtInstruction HoldPlace = "instruction"
	// HeldAtSync: each side stopped at a sync point's breakpoint.
	HeldAtSync HoldPlace = "sync"
	// HeldAtICount: each side replayed to an instruction count asked for
	// (`lockstep replay --at`).
	HeldAtICount HoldPlace = "icount"
	// HeldAtCall: between two builds, each side stopped at the entry of
	// the call localisation found different, before its first
	// instruction (its PC is the report's PC for that call).
	HeldAtCall HoldPlace = "call"
)

// Hold is a pair of guests kept stopped at a run's first divergence, with
// lockstep's own gdbstub connections closed so that gdb can attach to
// them. RunHold returns it; Start puts the guests there, Wait waits for
// the user, Close tears everything down.
//
// The guests are a fresh pair replayed from boot to the sync point before
// the divergence and single-stepped to it: the run's own guests went on
// to the end of the scenario. When the run was recorded, the pair is
// recorded afresh and held replaying the recording at the place's
// instruction count, where gdb can also execute backwards (rrhold.go).
type Hold struct {
	// Reason, when not empty, says why nothing is held: the run found no
	// divergence, or failed. Start then does nothing.
	Reason string
	// Place is where the guests are held. Sync is the 0-based sync point
	// they are driven to first (-1: reset) and Steps the instructions
	// stepped after it: with HeldAtSync, Steps is 0.
	Place HoldPlace
	Sync  int
	Steps int
	// Why says, when Place is HeldAtSync, why not at an instruction.
	Why string
	// Sides describe each held guest, filled in by Start.
	Sides [2]HeldSide
	// Script is the path of the gdb script that opens both sides as two
	// inferiors, written by Start.
	Script string
	// Notes are what the replay had to say.
	Notes []string
	// Took is how long Start took to bring the guests there.
	Took time.Duration
	// Reverse is true when the pair is held replaying a recording (QEMU
	// record/replay with a start snapshot): gdb's reverse-stepi and
	// reverse-continue work. NoReverse says why not, when not.
	Reverse   bool
	NoReverse string
	// ICount is each side's instruction count since boot where it is
	// held, when Reverse.
	ICount [2]uint64

	r    *run
	pair guest.Pair
	// want is the PC each side should stand at, from the report.
	want [2]compare.Location
	// spec is the sync point whose compare spec the divergence was found
	// with.
	spec int
	// place puts the pair there; nil is relaunchAndStep.
	place placer
	// cspec is the compare spec the divergence was found with; traced
	// whether the trace engine applies to the pair.
	cspec  scenario.CompareSpec
	traced bool
	// unchecked: there is no reported PC to check the place against.
	unchecked bool
	// entry is, with HeldAtCall, the hit of each side's function entry
	// to stop at after sync point Sync.
	entry [2]int
}

// HeldSide is one held guest and how to attach gdb to it.
type HeldSide struct {
	// Name is "a (good)".
	Name string
	// Socket is the gdbstub's unix socket.
	Socket string
	// Symbols is the ELF gdb loads for the side, "" when none.
	Symbols string
	// Arch is gdb's name of the architecture ("i386:x86-64").
	Arch string
	// GDB is "gdb" for the host's architecture, else "gdb-multiarch".
	GDB string
	// PC is where the side stands.
	PC compare.Location
	// AtReported is true when PC is the PC the report gives for the
	// divergence (or the sync point).
	AtReported bool
	// Reported is that PC.
	Reported compare.Location
	// Command is a ready-to-paste shell command attaching gdb.
	Command string
}

// holdFinding is the instruction divergence a hold may stop at: Step
// instructions after sync point Base.
type holdFinding struct {
	found bool
	base  int
	d     compare.Divergence
}

// holdInstruction remembers the first instruction-level divergence the
// run found, counted from sync point base (k-1 for a localisation of
// sync point k, k for k's step window).
func (r *run) holdInstruction(base int, divs []compare.Divergence) {
	if r.hold == nil || r.hold.found {
		return
	}
	for _, d := range divs {
		if d.Noise || d.Kind != compare.KindInstruction || d.Instruction == nil {
			continue
		}
		in := d.Instruction
		if d.Step > 0 && in.Granularity == compare.ByInstruction ||
			in.Granularity == compare.ByFunction && in.Entry[0] > 0 && in.Entry[1] > 0 {
			*r.hold = holdFinding{found: true, base: base, d: d}
			return
		}
	}
}

// RunHold is Run for --hold: it runs the scenario like Run and returns,
// besides the result, a Hold of the run's first divergence. The hold is
// never nil; its Reason says when there is nothing to hold. The caller
// writes the reports, then calls Start, Wait and Close (Close always).
func RunHold(ctx context.Context, sc *scenario.Scenario, opts Options) (*Result, *Hold, error) {
	r := newRun(sc, opts)
	r.hold = &holdFinding{}
	err := r.run(ctx)
	h := r.holdPlan(err)
	if h.Reason != "" {
		h.removeDir()
	}
	return r.res, h, err
}

// holdPlan decides where to hold, from the finished run.
func (r *run) holdPlan(runErr error) *Hold {
	h := &Hold{r: r}
	var se *ScenarioError
	switch {
	case errors.As(runErr, &se):
		h.Reason = "the scenario is in error: nothing ran to hold"
		return h
	case errors.Is(runErr, context.Canceled):
		h.Reason = "the run was interrupted"
		return h
	case r.sc.AnyAttached():
		h.Reason = "a side attached to a running QEMU: a hold replays both guests from boot, and an attached guest cannot be restarted"
		return h
	case runErr != nil:
		h.Reason = fmt.Sprintf("the run failed (infrastructure: %v); a dead or failing QEMU is not held", runErr)
		return h
	case r.res.Outcome != OutcomeDiverged:
		h.Reason = fmt.Sprintf("the guests did not diverge (outcome %s): nothing to hold at", r.res.Outcome)
		return h
	}
	ks := -1
	var pointDiv, arrival bool
	var exit *compare.Divergence // an exit inside the step window
	for i, d := range r.res.Divergences {
		if d.Noise || d.Sync < 0 || (ks >= 0 && d.Sync > ks) {
			continue
		}
		if ks < 0 || d.Sync < ks {
			ks, pointDiv, arrival, exit = d.Sync, false, false, nil
		}
		switch {
		case d.Kind == compare.KindArrival:
			arrival = true
		case d.Kind == compare.KindExit && d.Step > 0 && exit == nil:
			exit = &r.res.Divergences[i]
		case d.Step == 0 && d.Kind != compare.KindInstruction && d.Kind != compare.KindExit:
			pointDiv = true
		}
	}
	if ks < 0 {
		h.Reason = "the first divergence is how the guests ended, after the last sync point: there is no stopped place to hold at"
		return h
	}
	reached := func(k int) bool { return k >= 0 && r.res.Syncs[k].Reached[0] && r.res.Syncs[k].Reached[1] }
	c := r.hold
	h.traced = r.eng != nil && r.eng.Traceable(r.pair)
	switch {
	case arrival || !reached(ks):
		if !reached(ks - 1) {
			h.Reason = fmt.Sprintf("the guests parted before sync point %d, the first, without reaching it together: no sync point to hold at", ks+1)
			return h
		}
		h.at(ks-1, fmt.Sprintf("the guests did not both reach sync point %d; held at sync point %d, the last both reached", ks+1, ks))
		return h
	case c.found && c.d.Instruction.Granularity == compare.ByFunction && (c.base == ks-1 && pointDiv || c.base == ks && !pointDiv):
		// Between two builds: each side's call, by the hit of its
		// function's entry after the sync point.
		h.Place, h.Sync, h.entry = HeldAtCall, c.base, c.d.Instruction.Entry
		h.want, h.spec = c.d.PC, c.d.Sync
		return h
	case c.found && c.base == ks-1 && pointDiv && ks == 0 && !h.traced:
		h.at(ks, "the divergence was localised from boot, and only the trace engine (off here) counts from boot the way the localisation did; held at the diverging sync point 1")
		return h
	case c.found && c.base == ks-1 && pointDiv, c.found && c.base == ks && !pointDiv:
		if n := c.d.Step - 1; n > MaxHoldSteps && !h.traced {
			h.at(ks, fmt.Sprintf("the localised instruction is %d instructions after %s, more than the %d a hold single-steps without the trace engine; held at the diverging sync point %d",
				c.d.Step, engine.PointName(c.base), MaxHoldSteps, ks+1))
			return h
		}
		h.Place, h.Sync, h.Steps = HeldAtInstruction, c.base, c.d.Step-1
		h.want, h.spec = c.d.PC, c.d.Sync
		// The spec the divergence was found with: localisation compares
		// the general registers too; a step window its point's own.
		sp := r.sc.Sync[c.d.Sync]
		h.cspec = sp.Compare
		if c.base < c.d.Sync {
			h.cspec = scenario.CompareSpec{Registers: append([]string{"general"}, sp.Compare.Registers...), Ignore: sp.Compare.Ignore}
		}
		return h
	case exit != nil && !pointDiv && !(c.found && c.base == ks):
		h.at(ks, fmt.Sprintf("the first divergence is a guest exit %d instructions into the step window (%s): an exited guest cannot be held; held at the sync point before it",
			exit.Step, exit.Summary))
	case c.found && c.d.Sync == ks:
		h.at(ks, "the localised instruction could not be placed after a sync point both matched at; held at the diverging sync point")
	case r.sc.Localize.Enabled && r.sc.SameBinary():
		h.at(ks, "no instruction was localised (see the notes); held at the diverging sync point")
	case r.sc.Localize.Enabled:
		h.at(ks, "between two builds localisation is by function entry, not instruction; held at the diverging sync point")
	default:
		h.at(ks, "localisation is off; held at the diverging sync point")
	}
	return h
}

// at plans a hold at sync point k.
func (h *Hold) at(k int, why string) {
	h.Place, h.Sync, h.Steps, h.Why = HeldAtSync, k, 0, why
	h.want = h.r.res.Syncs[k].PC
}

// Start launches a fresh pair, drives it to the place planned, checks
// that each side stands at the PC the report gives, removes lockstep's
// breakpoints, closes lockstep's gdbstub connections (the guests stay
// stopped) and writes the gdb script. The guests live until ctx ends or
// Close; getting there is bounded by the scenario's timeout.
func (h *Hold) Start(ctx context.Context) error {
	if h.Reason != "" {
		return nil
	}
	r := h.r
	t0 := time.Now()
	defer func() { h.Took = time.Since(t0) }()
	pctx, cancel := context.WithTimeoutCause(ctx, r.sc.Timeout,
		fmt.Errorf("hold: getting back to the divergence timed out after %s", r.sc.Timeout))
	defer cancel()
	e := h.engine(pctx)
	place := h.place
	if place == nil {
		place = h.placeRR
	}
	if err := place(ctx, pctx, e); err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	p := h.pair
	for i, g := range p {
		pc, err := g.PC(pctx)
		if err != nil {
			return fmt.Errorf("hold: %w", err)
		}
		hs := &h.Sides[i]
		hs.Name, hs.Socket, hs.PC, hs.Reported = g.Name(), g.Socket, g.Loc(pc), h.want[i]
		hs.AtReported = h.unchecked || pc == h.want[i].Addr
		hs.Arch = g.T.Layout().Arch
		hs.GDB = gdbFor(g.Arch.Name)
		hs.Symbols = r.sc.Guests[i].Symbols
		if hs.Symbols == "" && r.syms[i] != nil {
			hs.Symbols = r.syms[i].Path()
		}
		hs.Command = gdbCommand(*hs)
	}
	for _, g := range p {
		if err := g.Detach(pctx); err != nil {
			return fmt.Errorf("hold: %w", err)
		}
	}
	h.Script = filepath.Join(r.dir, HoldScriptName)
	if err := os.WriteFile(h.Script, []byte(h.gdbScript()), 0o644); err != nil {
		return fmt.Errorf("hold: gdb script: %w", err)
	}
	return nil
}

// engine is the engine that drives a hold's pairs, within ctx.
func (h *Hold) engine(ctx context.Context) *engine.Engine {
	r := h.r
	deadline, _ := ctx.Deadline()
	return engine.New(engine.Config{
		Scenario: r.sc, Same: r.sc.SameBinary(), NoNoise: r.opts.NoNoise, Deadline: deadline,
		Timeouts: r.to, Launcher: r.launcher, Log: r.log, Recorder: h,
		Trace: !r.opts.NoTraceEngine, TraceStopBefore: true,
	})
}

// A placer puts a fresh pair (h.pair, set as soon as it exists, so that
// Close tears it down) at the place h planned. The pair lives as long as
// life; getting there is bounded by ctx. relaunchAndStep is the placer
// there is without a recording; recordAndReplay records and replays both
// guests to the instruction count of the place (replay_break) and leaves
// the pair replaying, where gdb can also step backwards.
type placer func(life, ctx context.Context, e *engine.Engine) error

// relaunchAndStep launches a fresh pair, replays it from boot to sync
// point h.Sync, and takes both sides h.Steps instructions further,
// counted as the localisers count them: by single steps, or for deep
// divergences (and from reset) with the trace engine, where it applies.
func (h *Hold) relaunchAndStep(life, ctx context.Context, e *engine.Engine) error {
	r := h.r
	p, err := guest.LaunchPair(life, r.launcher, [2]scenario.Guest(r.sc.Guests), r.syms, "-hold")
	if err != nil {
		return err
	}
	h.pair = p
	if err := h.toSync(ctx, e, p); err != nil {
		return err
	}
	if h.Place == HeldAtCall {
		return h.toCall(ctx, p)
	}
	if h.Steps == 0 && h.Sync >= 0 {
		return nil
	}
	if h.Sync < 0 || (h.Steps > traceAbove && e.Traceable(p)) {
		// The trace engine finds the divergence again and stops both
		// sides just before it, by breakpoint and hit count.
		w, done, err := e.TraceFrom(ctx, p, h.spec, h.Sync, h.cspec, h.Steps+1, nil, func(int) string { return "" })
		switch {
		case err != nil:
			return fmt.Errorf("trace engine: %w", err)
		case !done || w.Steps != h.Steps:
			h.Note(fmt.Sprintf("hold: the trace engine found the first divergence %d instructions after %s this time, not %d", w.Steps+1, engine.PointName(h.Sync), h.Steps+1))
		}
		return nil
	}
	st, err := e.LockstepSteps(ctx, p, h.Sync, h.cspec, h.Steps, nil)
	if err != nil {
		return fmt.Errorf("stepping to the localised instruction: %w", err)
	}
	if st.N != h.Steps || st.Exited[0] || st.Exited[1] {
		h.Note(fmt.Sprintf("hold: stepping went %d of the %d instructions to the localised one (diverged %v, exited %v)",
			st.N, h.Steps, st.Diverged, st.Exited))
	}
	return nil
}

// toCall takes each side of p, standing at sync point h.Sync, to hit
// h.entry[i] of a breakpoint on the entry of the call localisation found
// different (h.want[i]), and leaves it stopped there. A side that stops
// anywhere else first (it exits, or faults) is not where the report says:
// Start's PC check says so.
func (h *Hold) toCall(ctx context.Context, p guest.Pair) error {
	for i, g := range p {
		addr := h.want[i].Addr
		if err := g.RemoveAll(ctx); err != nil {
			return err
		}
		if err := g.Insert(ctx, g.BPKind, addr); err != nil {
			return fmt.Errorf("side %s: breakpoint at %s: %w", g.Name(), h.want[i], err)
		}
		for n := 0; n < h.entry[i]; n++ {
			st, err := g.Cont(ctx)
			if err != nil {
				return fmt.Errorf("side %s: running to hit %d of %s: %w", g.Name(), h.entry[i], h.want[i], err)
			}
			pc, err := g.PC(ctx)
			if err != nil {
				return err
			}
			if pc != addr {
				h.Note(fmt.Sprintf("hold: side %s stopped at %s (%s) before hit %d of %s", g.Name(), g.Loc(pc), st, h.entry[i], h.want[i]))
				break
			}
		}
		if err := g.Remove(ctx, addr); err != nil {
			return err
		}
	}
	return nil
}

// toSync applies the scenario's single-step mask to a fresh pair p and
// replays it from boot to sync point h.Sync (none: reset).
func (h *Hold) toSync(ctx context.Context, e *engine.Engine, p guest.Pair) error {
	for _, g := range p {
		if _, err := g.ApplySstep(ctx, h.r.sc.Determinism.Sstep); err != nil {
			return err
		}
	}
	for j := 0; j <= h.Sync; j++ {
		if _, err := localize.Replay(ctx, e, p, j, [2]map[uint64]string{}); err != nil {
			return err
		}
	}
	return nil
}

// Note records a note of the replay (engine.Recorder).
func (h *Hold) Note(msg string) {
	if !slices.Contains(h.Notes, msg) {
		h.Notes = append(h.Notes, msg)
	}
}

// Progress is engine.Recorder's progress; a hold shows none.
func (h *Hold) Progress(engine.Phase, int) {}

// Where describes the place held, for people, counting as the report
// does (its "step 42" is the 42nd instruction after the point, held before
// it executes): "the localised instruction, step 42 after sync point 1
// (probe_cpuid_all), before it executes".
func (h *Hold) Where() string {
	if h.Place == HeldAtICount {
		return fmt.Sprintf("instruction count %d (a), %d (b)", h.ICount[0], h.ICount[1])
	}
	if h.Place == HeldAtInstruction {
		return fmt.Sprintf("the localised instruction, step %d after %s, before it executes",
			h.Steps+1, h.pointName(h.Sync))
	}
	if h.Place == HeldAtCall {
		return fmt.Sprintf("the localised call's entry, hit %d (a) and %d (b) of its function after %s, before it executes",
			h.entry[0], h.entry[1], h.pointName(h.Sync))
	}
	return h.pointName(h.Sync)
}

func (h *Hold) pointName(k int) string {
	if k < 0 {
		return "reset"
	}
	return fmt.Sprintf("sync point %d (%s)", k+1, h.r.sc.Sync[k].Break)
}

// Wait waits until ctx ends (Ctrl-C, SIGTERM), timeout passes (0: no
// timeout) or both held QEMUs have ended (gdb's detach resumes a guest,
// which may then run to its end), and says which.
func (h *Hold) Wait(ctx context.Context, timeout time.Duration) string {
	if h.Reason != "" || h.pair[0] == nil || h.pair[1] == nil {
		return "nothing held"
	}
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	// A guest that gdb detached from runs on and may end; the other is
	// still held.
	both := make(chan struct{})
	a, b := h.pair[0].M.Exited(), h.pair[1].M.Exited()
	go func() {
		<-a
		<-b
		close(both)
	}()
	select {
	case <-ctx.Done():
		return "interrupted"
	case <-tc:
		return fmt.Sprintf("hold timeout (%s) passed", timeout)
	case <-both:
		// Ctrl-C kills every QEMU (qemu.HandleSignals) just before it
		// cancels ctx: QEMUs that end together with an interrupt are the
		// interrupt's doing.
		select {
		case <-ctx.Done():
			return "interrupted"
		case <-time.After(time.Second):
		}
		return "both guests' QEMUs ended"
	}
}

// Close tears the held guests down and removes the run directory unless
// the run keeps it. It is safe to call more than once.
func (h *Hold) Close(ctx context.Context) error {
	err := h.closePair(ctx)
	h.removeDir()
	return err
}

func (h *Hold) removeDir() {
	if h.r != nil && !h.r.opts.Keep && h.r.dir != "" {
		os.RemoveAll(h.r.dir)
	}
}

// gdbFor is the gdb to use for a guest of architecture name: the host's
// own gdb for the host's architecture, gdb-multiarch for any other.
func gdbFor(name string) string {
	host := map[string][]string{
		"amd64": {"x86_64", "i386"}, "386": {"i386"}, "arm64": {"aarch64"},
		"riscv64": {"riscv64"}, "s390x": {"s390x"}, "ppc64le": {"ppc64"},
	}[runtime.GOARCH]
	if slices.Contains(host, name) {
		return "gdb"
	}
	return "gdb-multiarch"
}

// gdbCommand is the shell command that attaches gdb to one held side.
func gdbCommand(s HeldSide) string {
	argv := []string{s.GDB}
	if s.Arch != "" {
		argv = append(argv, "-ex", "set architecture "+s.Arch)
	}
	argv = append(argv, "-ex", "target remote "+s.Socket)
	if s.Symbols != "" {
		argv = append(argv, s.Symbols)
	}
	return qemu.Quote(argv)
}

// gdbScript opens both held sides in one gdb: side a as inferior 1, side
// b as inferior 2, each with its symbols.
func (h *Hold) gdbScript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# lockstep --hold: both guests of %q stopped at %s.\n", h.r.sc.Name, h.Where())
	fmt.Fprintf(&b, "# Open with: %s -x %s\n", h.Sides[0].GDB, h.Script)
	b.WriteString("# Inferior 1 is side a, inferior 2 side b; switch with `inferior N`.\n")
	b.WriteString("# `disconnect` leaves a guest held; `detach` or quitting gdb resumes it.\n")
	b.WriteString("set confirm off\nset pagination off\n")
	for i, s := range h.Sides {
		fmt.Fprintf(&b, "\n# side %s: pc %s\n", s.Name, s.PC)
		if i > 0 {
			b.WriteString("add-inferior\n")
			fmt.Fprintf(&b, "inferior %d\n", i+1)
		}
		if s.Symbols != "" {
			fmt.Fprintf(&b, "file %s\n", gdbQuote(s.Symbols))
		}
		if s.Arch != "" {
			fmt.Fprintf(&b, "set architecture %s\n", s.Arch)
		}
		fmt.Fprintf(&b, "target remote %s\n", s.Socket)
	}
	b.WriteString("\ninferior 1\n")
	return b.String()
}

// gdbQuote quotes a file name for a gdb command when it needs it.
func gdbQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
