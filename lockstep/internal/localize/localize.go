package localize

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/trace"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// maxFuncs bounds how many function-entry breakpoints localisation between
// different builds inserts when trace.functions does not say.
const maxFuncs = 4096

// Localizer localises divergences with one engine and one rewinder.
type Localizer struct {
	E  *engine.Engine
	RW Rewinder
	// Bisect, when set, can localise by record/replay bisection (see
	// localize.method and determinism.record).
	Bisect *Bisector
	// Info says how the last At localised, for the report.
	Info Info
}

// At finds where the guests parted between sync points k-1 and k, given
// the divergences found at k. It returns the localised divergences; what
// it could not find is said in notes. The error is for infrastructure
// (a QEMU that failed) and the run's end only.
func (l *Localizer) At(ctx context.Context, k int, found []compare.Divergence) ([]compare.Divergence, error) {
	e := l.E
	l.Info = Info{}
	e.Progress(engine.PhaseLocalising, k)
	t0 := time.Now()
	var out []compare.Divergence
	var divs []compare.Divergence
	var err error
	if e.Same() {
		divs, err = l.instructions(ctx, k)
	} else {
		divs, err = l.calls(ctx, k)
	}
	if err = l.settle(err); err != nil {
		return out, err
	}
	out = append(out, divs...)
	e.Logf("localisation of sync point %d took %s", k+1, time.Since(t0).Round(time.Millisecond))
	ranges := 0
	for _, d := range found {
		if d.Kind != compare.KindMemory || d.Noise || d.Memory == nil || d.Memory.Length == 0 {
			continue
		}
		md := d.Memory
		if md.Space == scenario.SpacePhysical {
			e.Notef("localisation: memory %s is compared in physical space; write watchpoints watch virtual addresses, so its stores are not localised", md.Name)
			continue
		}
		word := l.E.PtrSize()
		for _, off := range md.Words(word, maxRanges-ranges) {
			ranges++
			divs, err := l.writes(ctx, k, md, uint64(off))
			if err = l.settle(err); err != nil {
				return out, err
			}
			out = append(out, divs...)
		}
		if ranges == maxRanges {
			e.Notef("localisation: stores localised for the first %d differing words only", maxRanges)
			break
		}
	}
	return out, nil
}

// maxRanges bounds the differing words whose stores are localised at one
// sync point: each costs a replay.
const maxRanges = 16

// settle turns a replay that did not get there into a note: the guests are
// not deterministic enough to replay. Anything else stays an error.
func (l *Localizer) settle(err error) error {
	if errors.Is(err, ErrNotReplayed) {
		l.E.Notef("localisation: %v; the guests are not deterministic enough to replay", err)
		return nil
	}
	return err
}

// instructions finds the first divergent instruction between sync points
// k-1 and k (one binary), with the trace engine when it applies and by
// gdbstub single steps otherwise.
func (l *Localizer) instructions(ctx context.Context, k int) ([]compare.Divergence, error) {
	e := l.E
	sc := e.Scenario()
	sp := &sc.Sync[k]
	spec := scenario.CompareSpec{Registers: append([]string{"general"}, sp.Compare.Registers...), Ignore: sp.Compare.Ignore}
	if inj := e.InjectedRegisters(); len(inj) > 0 {
		// They differ by design from the injection on: the first
		// consequence is the first other difference.
		spec.Ignore = append(append([]string(nil), spec.Ignore...), inj...)
		e.Notef("localisation: the injected registers (%s) are not compared while localising", strings.Join(inj, ", "))
	}
	method := sc.Localize.Method
	if method == scenario.MethodReplay || method == scenario.MethodAuto && sc.Determinism.Record {
		divs, done, err := l.replay(ctx, k, spec)
		if err != nil || done {
			return divs, err
		}
	} else if method == scenario.MethodAuto {
		l.Info.Why = "determinism.record is off, so no recording measured the depth"
	}
	p, err := l.RW.At(ctx, k-1)
	if err != nil {
		return nil, err
	}
	traceable := e.Traceable(p)
	switch {
	case method == scenario.MethodStep:
		traceable = false
		l.why("localize.method: step")
	case method == scenario.MethodTrace && !traceable:
		e.Notef("localisation: localize.method is trace, but the trace engine does not apply to this pair (it needs TCG on both sides, one x86_64 binary, QEMU 7.2 or later); stepping instead")
		l.why("localize.method: trace, but the trace engine does not apply to this pair")
	case method == scenario.MethodTrace:
		l.why("localize.method: trace")
	case traceable:
		l.why("the trace engine applies (TCG on both sides, one x86_64 binary)")
	default:
		l.why("the trace engine does not apply to this pair")
	}
	if traceable {
		l.Info.Method = scenario.MethodTrace
	} else {
		l.Info.Method = scenario.MethodStep
	}
	if k == 0 && !traceable {
		// From boot the firmware runs first: millions of instructions to
		// single-step, where the trace engine logs the kernel alone.
		e.Notef("localisation: sync point 1 diverged, and localising from boot needs the trace engine (both sides TCG, one x86_64 binary); add an earlier sync point (e.g. the kernel entry) to localise by stepping")
		return nil, nil
	}
	if traceable {
		w, done, err := l.trace(ctx, p, k, spec)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, err
		case err != nil && k == 0:
			e.Notef("localisation from boot: trace engine failed (%v)", err)
			return nil, nil
		case err != nil:
			// Stepping still gets the answer, on a pair rewound afresh; a
			// QEMU of that pair that fails is then infrastructure.
			e.Notef("localisation: trace engine failed (%v); stepping through the gdbstub instead", err)
			l.Info.Method = scenario.MethodStep
			l.why("the trace engine failed")
		case done:
			return w.Divergences, nil
		case k == 0:
			e.Notef("localisation from boot: the trace engine did not settle it (an exit before sync point 1)")
			return nil, nil
		}
		// The gdbstub pair may have moved: start again from k-1.
		if p, err = l.RW.At(ctx, k-1); err != nil {
			return nil, err
		}
	}
	return l.steps(ctx, p, k, spec)
}

// trace localises with the trace engine; p stands at sync point k-1.
func (l *Localizer) trace(ctx context.Context, p guest.Pair, k int, spec scenario.CompareSpec) (engine.Window, bool, error) {
	sp := &l.E.Scenario().Sync[k]
	addrK, err := p[0].Resolve(sp.Break)
	if err != nil {
		return engine.Window{}, false, err
	}
	arrivals := 0
	stop := func(i uint64, s *trace.State) bool {
		if i > 0 && s.PC == addrK {
			arrivals++
		}
		return arrivals >= sp.Hit
	}
	return l.E.TraceFrom(ctx, p, k, k-1, spec, l.E.Scenario().Localize.MaxSteps, stop, func(n int) string {
		return fmt.Sprintf("localised by trace %d instructions after %s", n, engine.PointName(k-1))
	})
}

// steps single-steps p from sync point k-1 towards sync point k.
func (l *Localizer) steps(ctx context.Context, p guest.Pair, k int, spec scenario.CompareSpec) ([]compare.Divergence, error) {
	e := l.E
	sp := &e.Scenario().Sync[k]
	var addrs [2]uint64
	for i, g := range p {
		a, err := g.Resolve(sp.Break)
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	var hits [2]int
	stop := func(pcs [2]uint64) bool {
		for i := range pcs {
			if pcs[i] == addrs[i] {
				hits[i]++
			}
		}
		return hits[0] >= sp.Hit && hits[1] >= sp.Hit
	}
	st, err := e.LockstepSteps(ctx, p, k, spec, e.Scenario().Localize.MaxSteps, stop)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Diverged || st.Exited[0] || st.Exited[1]:
		divs, err := e.StepFindings(ctx, p, k, st, func(n int) string {
			return fmt.Sprintf("localised %d instructions after %s", n, engine.PointName(k-1))
		})
		if err == nil && len(divs) == 0 {
			e.Notef("localisation: both guests exited after %d instructions from %s, alike", st.N, engine.PointName(k-1))
		}
		return divs, err
	case st.Stopped:
		e.Notef("localisation: the registers matched at every one of the %d instructions %s; the divergence is in memory or call path only", st.N, engine.Between(k))
	default:
		e.Notef("localisation: no divergence within localize.max_steps (%d instructions) after %s", st.N, engine.PointName(k-1))
	}
	return nil, nil
}

// calls compares the function entries both builds make between sync
// points k-1 and k and reports the first call whose name, order or
// arguments differ, with the call path there.
func (l *Localizer) calls(ctx context.Context, k int) ([]compare.Divergence, error) {
	e := l.E
	p, err := l.RW.At(ctx, k-1)
	if err != nil {
		return nil, err
	}
	if k == 0 && (p[0].Spec.Accel == scenario.AccelKVM || p[1].Spec.Accel == scenario.AccelKVM) {
		e.Notef("localisation: sync point 1 diverged, and following function entries from boot needs TCG on both sides (under KVM the loader overwrites software breakpoints); add an earlier sync point")
		return nil, nil
	}
	var fns [2]map[uint64]string
	for i, g := range p {
		fns[i] = l.funcs(g)
		if len(fns[i]) == 0 {
			e.Notef("localisation: no function symbols to follow on side %s", g.Name())
			return nil, nil
		}
	}
	arr, err := Replay(ctx, e, p, k, fns)
	if err != nil {
		return nil, err
	}
	a, b := arr[0].Calls, arr[1].Calls
	idx, reason, diverged, dead := engine.FirstCallDivergence(p, a, b, e.CallSymbolizers(p), e.Scenario().Sync[k].Compare.Registers)
	if dead != "" {
		e.Notef("localisation: the function entries %s differ only in argument registers the functions do not read (%s): not a divergence", engine.Between(k), dead)
	}
	if !diverged {
		verb := "match"
		if len(a) == 1 {
			verb = "matches"
		}
		e.Notef("localisation: %s %s %s by name, order and arguments", compare.Plural(len(a), "function entry", "function entries"), engine.Between(k), verb)
		return nil, nil
	}
	d := e.CallDivergence(k, idx, a, b,
		fmt.Sprintf("%s (localised by function entry %s: different builds)", reason, engine.Between(k)))
	// The call path at the divergent call: rewind once more and stop there.
	stacks, err := l.stacksAtCall(ctx, k, idx, fns)
	switch {
	case errors.Is(err, ErrNotReplayed) || err != nil && !errors.Is(err, guest.ErrInfrastructure) && ctx.Err() == nil:
		e.Notef("localisation: no call path at the divergent call: %v", err)
	case err != nil:
		return nil, err
	}
	d.Instruction.CallPath = stacks
	return []compare.Divergence{d}, nil
}

// stacksAtCall rewinds to sync point k-1, runs each side to its call
// number idx (0-based) among the function entries fns, and returns both
// backtraces there. A side with fewer calls gets no backtrace.
func (l *Localizer) stacksAtCall(ctx context.Context, k, idx int, fns [2]map[uint64]string) ([2][]compare.Frame, error) {
	return l.stacksAt(ctx, k, idx, func(ctx context.Context, i int, g *guest.Guest) (armed, error) {
		for addr := range fns[i] {
			if err := g.Insert(ctx, rsp.Software, addr); err != nil {
				return armed{}, err
			}
		}
		return armed{
			event: func(_ rsp.StopReply, pc uint64) bool { _, ok := fns[i][pc]; return ok },
			undo:  func() { g.RemoveAll(context.WithoutCancel(ctx)) },
		}, nil
	})
}

// armed is what stacksAt waits for on one side: event tells a stop that
// counts; pass, when set, moves past a counted stop that is not the one
// wanted (a write watchpoint that stops before the store steps over it);
// undo disarms.
type armed struct {
	event func(st rsp.StopReply, pc uint64) bool
	pass  func(ctx context.Context) error
	undo  func()
}

// stacksAt rewinds to sync point k-1 and, on each side, arms what arm
// returns (an event test and its undo), continues until the event has
// happened idx+1 times, and takes the backtrace there. A side on which it
// happens fewer times before the bound or the guest's end gets none.
func (l *Localizer) stacksAt(ctx context.Context, k, idx int,
	arm func(ctx context.Context, i int, g *guest.Guest) (armed, error)) ([2][]compare.Frame, error) {
	var stacks [2][]compare.Frame
	p, err := l.RW.At(ctx, k-1)
	if err != nil {
		return stacks, err
	}
	bound := l.E.WaitBound(ctx, &l.E.Scenario().Sync[k])
	err = p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		wctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		a, err := arm(wctx, i, g)
		if err != nil {
			return err
		}
		defer a.undo()
		for n := 0; n <= idx; {
			st, err := g.Cont(wctx)
			var f *guest.Fault
			if errors.As(err, &f) {
				return err
			}
			if err != nil || st.Exited() {
				return nil // fewer events on this side
			}
			pc, err := g.PC(wctx)
			if err != nil {
				return err
			}
			if a.event(st, pc) {
				if n++; n <= idx && a.pass != nil {
					if err := a.pass(wctx); err != nil {
						var f *guest.Fault
						if errors.As(err, &f) {
							return err
						}
						return nil // fewer events on this side
					}
				}
			}
		}
		bt, note, err := g.Backtrace(wctx)
		if note != "" {
			l.E.Notef("%s", note)
		}
		stacks[i] = bt
		return err
	})
	return stacks, err
}

// funcs picks the function entries to follow on g: every function when
// there are few enough, else the scenario's trace.functions.
func (l *Localizer) funcs(g *guest.Guest) map[uint64]string {
	if g.Syms == nil {
		return nil
	}
	fns := g.Syms.Functions()
	if len(fns) > maxFuncs {
		if len(l.E.Scenario().Trace.Functions) > 0 {
			return l.E.TraceAddrs(g, 1)
		}
		l.E.Notef("localisation: %d functions on side %s is too many to follow; name some in trace.functions", len(fns), g.Name())
		return nil
	}
	out := make(map[uint64]string, len(fns))
	for _, f := range fns {
		out[f.Addr] = f.Name
	}
	return out
}

// why adds a reason to the localisation's explanation.
func (l *Localizer) why(reason string) {
	if l.Info.Why != "" {
		l.Info.Why += "; "
	}
	l.Info.Why += reason
}

// Depths below which a recording's measured depth leaves localisation to
// the trace engine, or to stepping where the trace engine does not apply
// (docs/performance.md): a replay bisection costs a recording and a few
// replays, about as long as tracing autoTraceDepth instructions or
// stepping autoStepDepth.
const (
	autoTraceDepth = 200_000
	autoStepDepth  = 3_000
)

// replay localises by record/replay bisection when the pair allows it.
// done=false leaves the localisation to stepping or tracing.
func (l *Localizer) replay(ctx context.Context, k int, spec scenario.CompareSpec) ([]compare.Divergence, bool, error) {
	e := l.E
	sc := e.Scenario()
	forced := sc.Localize.Method == scenario.MethodReplay
	if forced {
		l.why("localize.method: replay")
	} else {
		l.why("determinism.record: true")
	}
	b := l.Bisect
	reason := ""
	if b == nil {
		reason = "no launcher for replay pairs"
	} else {
		reason = Unreplayable(b.Specs, e.Same())
	}
	if reason != "" {
		e.Notef("localisation: the pair cannot be replayed: %s; localising without replay", reason)
		l.Info.Fallback = reason
		l.why("cannot replay: " + reason)
		return nil, false, nil
	}
	b.Choose = nil
	if !forced {
		// auto: record once to measure the depth, then pick.
		trace := e.TraceSpecs(b.Specs)
		b.Choose = func(depth uint64) string {
			switch {
			case trace && depth < autoTraceDepth:
				return fmt.Sprintf("the depth is %d instructions, below %d: the trace engine is faster", depth, autoTraceDepth)
			case !trace && depth < autoStepDepth:
				return fmt.Sprintf("the depth is %d instructions, below %d: stepping is faster", depth, autoStepDepth)
			}
			return ""
		}
	}
	divs, done, err := b.Localize(ctx, e, k, spec, &l.Info)
	if err != nil || done {
		return divs, done, err
	}
	switch {
	case l.Info.Fallback != "":
		l.why("replay fell back: " + l.Info.Fallback)
	case l.Info.Declined != "":
		l.why(l.Info.Declined)
	}
	l.Info.Method = ""
	return nil, false, nil
}
