package lockstep

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// maxLocalizeFuncs bounds how many function-entry breakpoints localisation
// between different builds inserts when trace.functions does not say.
const maxLocalizeFuncs = 4096

// shouldLocalize reports whether sync point k is the first divergent point
// after a matching one, which is where localisation starts.
func (r *run) shouldLocalize(k int) bool {
	if !r.sc.Localize.Enabled {
		return false
	}
	real := false
	for _, d := range r.res.Divergences {
		if d.Sync == k && !d.Noise && (d.Kind == compare.KindRegister || d.Kind == compare.KindMemory || d.Kind == compare.KindCallPath) {
			real = true
		}
	}
	if !real {
		return false
	}
	if k == 0 {
		r.note("sync point 1 (%s) diverged: localisation starts from the last matching sync point, and there is none; add an earlier sync point (e.g. the kernel entry) to localise", r.sc.Sync[0].Break)
		return false
	}
	prev := r.res.Syncs[k-1]
	if r.same {
		// Stepping compares registers from k-1 on: they must agree there.
		return prev.Status == "match" || prev.Status == "noise"
	}
	// Between builds each window's function entries are compared on their
	// own, so every divergent point after one both sides reached counts.
	if r.localized >= maxLocalizations {
		r.note("sync point %d: not localised; a run localises at most %d sync points", k+1, maxLocalizations)
		return false
	}
	return prev.Reached[0] && prev.Reached[1]
}

// maxLocalizations bounds the localisations of one run between different
// builds: each costs a fresh pair of guests.
const maxLocalizations = 4

// localize finds where the guests parted between sync points k-1 and k. It
// starts a fresh pair of guests (the originals stay where they are, at
// sync point k), replays them to sync point k-1, and then:
//   - with one binary, single-steps both in lockstep until the first
//     instruction after which the general registers differ;
//   - with different builds, records the function entries on the way to
//     sync point k on both sides, with their argument registers, and
//     reports the first call whose name, order or arguments differ.
func (r *run) localize(ctx context.Context, k int) (err error) {
	r.progress("localising", k)
	r.localized++
	t0 := time.Now()
	// Checkpoints (checkpoint.go, docs/checkpoints.md): when the run's own
	// guests have a snapshot of sync point k-1, restore them there instead
	// of relaunching a fresh pair and replaying from boot, and put them
	// back at sync point k when done.
	restored, err := r.restorePair(ctx, k)
	if err != nil {
		return err
	}
	if restored {
		defer func() {
			if ferr := r.finishLocalize(ctx, k); ferr != nil && err == nil {
				err = ferr
			}
		}()
		return r.localizeFrom(ctx, r.sides, k, t0)
	}
	pair, closePair, ok, err := r.freshPairAt(ctx, k-1)
	defer closePair()
	if err != nil || !ok {
		return err
	}
	return r.localizeFrom(ctx, pair, k, t0)
}

// localizeFrom localises sync point k with pair standing at sync point
// k-1 (split from localize for the checkpoint path).
func (r *run) localizeFrom(ctx context.Context, pair [2]*side, k int, t0 time.Time) (err error) {
	if r.same {
		found := false
		if r.traceable() {
			found, err = r.localizeTrace(ctx, pair, k)
			if err != nil {
				r.note("localisation: trace engine failed (%v); stepping through the gdbstub instead", err)
				err = nil
			}
		}
		if !found {
			err = r.localizeSteps(ctx, pair, k)
		}
	} else {
		err = r.localizeCalls(ctx, pair, k)
	}
	r.logf("localisation of sync point %d took %s", k+1, time.Since(t0).Round(time.Millisecond))
	return err
}

// freshPairAt starts a second pair of guests and replays them to sync
// point j (none when j < 0). ok is false, with a note, when the replay did
// not get there. The returned func tears the pair down; call it whatever
// happened.
func (r *run) freshPairAt(ctx context.Context, j int) (pair [2]*side, closePair func(), ok bool, err error) {
	pair, err = r.relaunch(ctx)
	closePair = func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		for _, s := range pair {
			if s != nil {
				s.close(tctx)
			}
		}
	}
	if err != nil {
		return pair, closePair, false, err
	}
	for i := 0; i <= j; i++ {
		ok, err := r.replayTo(ctx, pair, i, [2]map[uint64]string{})
		if err != nil || !ok {
			return pair, closePair, false, err
		}
	}
	return pair, closePair, true, nil
}

// relaunch starts a second pair of guests like the first.
func (r *run) relaunch(ctx context.Context) ([2]*side, error) {
	var pair [2]*side
	for i, s := range r.sides {
		pair[i] = &side{idx: i, tag: scenario.SideNames[i] + "-localise", guest: s.guest, syms: s.syms,
			bps: map[uint64]rsp.BreakKind{}}
	}
	var g errgroup.Group
	for _, s := range pair {
		g.Go(func() error { return s.launch(ctx, r.dir, r.opts, r.sc.Determinism) })
	}
	if err := g.Wait(); err != nil {
		return pair, infra(fmt.Errorf("localisation: %w", err))
	}
	if err := r.applySstep(ctx, pair, false); err != nil {
		return pair, err
	}
	return pair, nil
}

// replayTo drives both sides of pair to sync point j, recording calls at
// the given function entries (by side) on the way. It reports false, with
// a note, when the replay did not reach the point on both sides.
func (r *run) replayTo(ctx context.Context, pair [2]*side, j int, trace [2]map[uint64]string) (bool, error) {
	sp := &r.sc.Sync[j]
	bound := r.waitBound(ctx, sp)
	var arr [2]arrival
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range pair {
		g.Go(func() error {
			addr, err := s.resolve(sp.Break)
			if err != nil {
				return err
			}
			arr[i], err = r.runTo(gctx, s, j, addr, sp.Hit, bound, trace[i])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return false, infra(fmt.Errorf("localisation replay: %w", err))
	}
	if !arr[0].reached || !arr[1].reached {
		r.note("localisation: the replay did not reach sync point %d on both sides (a %s; b %s); the guests are not deterministic enough to replay",
			j+1, arr[0].detail, arr[1].detail)
		return false, nil
	}
	pair[0].lastCalls, pair[1].lastCalls = arr[0].calls, arr[1].calls
	return true, nil
}

// localizeSteps steps both guests from sync point k-1 towards sync point k.
func (r *run) localizeSteps(ctx context.Context, pair [2]*side, k int) error {
	sp := &r.sc.Sync[k]
	var addrs [2]uint64
	for i, s := range pair {
		a, err := s.resolve(sp.Break)
		if err != nil {
			return err
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
	spec := scenario.CompareSpec{Registers: append([]string{"general"}, sp.Compare.Registers...), Ignore: sp.Compare.Ignore}
	st, err := r.lockstepSteps(ctx, pair, k, spec, r.sc.Localize.MaxSteps, stop)
	if err != nil {
		return err
	}
	switch {
	case st.diverged || st.exited[0] != st.exited[1]:
		where := fmt.Sprintf("localised %d instructions after sync point %d", st.n, k)
		if err := r.recordSteps(ctx, pair, k, st, where); err != nil {
			return err
		}
	case st.stopped:
		r.note("localisation: the registers matched at every one of the %d instructions from sync point %d to %d; the divergence is in memory or call path only", st.n, k, k+1)
	default:
		r.note("localisation: no divergence within localize.max_steps (%d instructions) after sync point %d", st.n, k)
	}
	return nil
}

// localizeCalls compares the function entries both builds make between
// sync points k-1 and k.
func (r *run) localizeCalls(ctx context.Context, pair [2]*side, k int) error {
	var trace [2]map[uint64]string
	for i, s := range pair {
		trace[i] = r.localizeFuncs(s)
		if len(trace[i]) == 0 {
			r.note("localisation: no function symbols to follow on side %s", s.name())
			return nil
		}
	}
	ok, err := r.replayTo(ctx, pair, k, trace)
	if err != nil || !ok {
		return err
	}
	a, b := pair[0].lastCalls, pair[1].lastCalls
	idx, reason, diverged := firstCallDivergence(pair, a, b, r.callSymbolizers())
	if !diverged {
		verb := "match"
		if len(a) == 1 {
			verb = "matches"
		}
		r.note("localisation: %s between sync points %d and %d %s by name, order and arguments", plural(len(a), "function entry", "function entries"), k, k+1, verb)
		return nil
	}
	id := &compare.InstructionDiff{Granularity: "function"}
	var pcs [2]compare.Location
	for i, cs := range [2][]compare.Call{a, b} {
		if idx < len(cs) {
			pcs[i] = cs[idx].Loc
			id.Disasm[i] = "call " + cs[idx].Name + callArgs(cs[idx])
		}
	}
	// The call path at the divergent call: replay once more and stop there.
	stacks, err := r.stacksAtCall(ctx, k, idx, trace)
	if err != nil {
		r.note("localisation: no call path at the divergent call: %v", err)
	}
	id.CallPath = stacks
	r.diverge(k, compare.Divergence{Kind: compare.KindInstruction, PC: pcs, Instruction: id,
		Summary: fmt.Sprintf("localised between sync points %d and %d (by function entry: different builds): %s", k, k+1, reason)})
	return nil
}

// stacksAtCall replays a fresh pair of guests to sync point k-1, runs each
// side to its call number idx (0-based) among the function entries of
// trace, and returns both backtraces there. A side with fewer calls gets
// no backtrace.
func (r *run) stacksAtCall(ctx context.Context, k, idx int, trace [2]map[uint64]string) ([2][]compare.Frame, error) {
	var stacks [2][]compare.Frame
	pair, closePair, ok, err := r.freshPairAt(ctx, k-1)
	defer closePair()
	if err != nil {
		return stacks, err
	}
	if !ok {
		return stacks, fmt.Errorf("the replay did not reach sync point %d", k)
	}
	bound := r.waitBound(ctx, &r.sc.Sync[k])
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range pair {
		g.Go(func() error {
			wctx, cancel := context.WithTimeout(gctx, bound)
			defer cancel()
			for addr := range trace[i] {
				if err := s.insert(wctx, rsp.Software, addr); err != nil {
					return err
				}
			}
			for n := 0; n <= idx; {
				st, err := s.cont(wctx)
				if err != nil || s.exited || st.Kind == 'W' || st.Kind == 'X' {
					return nil // fewer calls on this side
				}
				pc, err := s.pc(wctx)
				if err != nil {
					return err
				}
				if _, ok := trace[i][pc]; ok {
					n++
				}
			}
			bt, err := r.backtrace(wctx, s)
			stacks[i] = bt
			return err
		})
	}
	return stacks, g.Wait()
}

func callArgs(c compare.Call) string {
	s := "("
	for i, v := range c.Args {
		if i > 0 {
			s += ", "
		}
		name := fmt.Sprintf("arg%d", i)
		if i < len(c.ArgNames) {
			name = c.ArgNames[i]
		}
		s += fmt.Sprintf("%s=%#x", name, v)
	}
	return s + ")"
}

// localizeFuncs picks the function entries to follow on side s: every
// function when there are few enough, else the scenario's trace.functions.
func (r *run) localizeFuncs(s *side) map[uint64]string {
	if s.syms == nil {
		return nil
	}
	fns := s.syms.Functions()
	if len(fns) > maxLocalizeFuncs {
		if len(r.sc.Trace.Functions) > 0 {
			return r.traceAddrs(s, 1)
		}
		r.note("localisation: %d functions on side %s is too many to follow; name some in trace.functions", len(fns), s.name())
		return nil
	}
	out := make(map[uint64]string, len(fns))
	for _, f := range fns {
		out[f.Addr] = f.Name
	}
	return out
}

// profilingHooks are call targets compiled into function entries that
// neither read nor clobber arguments.
var profilingHooks = map[string]bool{"__fentry__": true, "mcount": true, "__cyg_profile_func_enter": true}

// maxLiveDepth bounds how many calls deep liveArgs follows.
const maxLiveDepth = 4

// liveArgs returns which argument registers the function at addr may read,
// from its code in the symbol file; nil when that is unknown.
func (s *side) liveArgs(addr uint64) []bool {
	return s.liveArgsDepth(addr, 0)
}

func (s *side) liveArgsDepth(addr uint64, depth int) []bool {
	if v, ok := s.live[addr]; ok {
		return v
	}
	if s.live == nil {
		s.live = map[uint64][]bool{}
	}
	// Provisionally unknown, which also ends recursion through cycles.
	s.live[addr] = nil
	if s.arch.LiveArgs == nil || s.syms == nil || depth > maxLiveDepth {
		return nil
	}
	l, ok := s.symbolize(addr)
	if !ok || l.Offset != 0 {
		return nil // not a function entry: a jump inside a function
	}
	// The entry block is short; near the end of a section less is there.
	var code []byte
	for n := 256; n >= 1 && code == nil; n /= 2 {
		code, _ = s.syms.ReadAt(addr, n)
	}
	if code == nil {
		return nil
	}
	live := s.arch.LiveArgs(code, addr, func(t uint64) ([]bool, bool) {
		if l, ok := s.symbolize(t); ok && l.Offset == 0 && profilingHooks[l.Symbol] {
			return nil, true
		}
		return s.liveArgsDepth(t, depth+1), false
	})
	s.live[addr] = live
	return live
}

// maskDeadArgs returns copies of two call sequences in which the argument
// registers that neither side's function reads are zeroed: without DWARF
// the arity is unknown, and leftovers in unused registers are not
// differences.
func maskDeadArgs(sides [2]*side, a, b []compare.Call) ([]compare.Call, []compare.Call) {
	a, b = slices.Clone(a), slices.Clone(b)
	for i := range min(len(a), len(b)) {
		if a[i].Name != b[i].Name {
			continue
		}
		la, lb := sides[0].liveArgs(a[i].Loc.Addr), sides[1].liveArgs(b[i].Loc.Addr)
		if la == nil || lb == nil {
			continue
		}
		a[i].Args, b[i].Args = slices.Clone(a[i].Args), slices.Clone(b[i].Args)
		for j := range min(len(a[i].Args), len(b[i].Args), len(la), len(lb)) {
			if !la[j] && !lb[j] {
				a[i].Args[j], b[i].Args[j] = 0, 0
			}
		}
	}
	return a, b
}

// firstCallDivergence compares two call sequences by name, order and the
// argument registers each function reads. Only when those all match does
// it look at the registers no side reads, and says so: a caller that sets
// an unused register differently did change, but leftovers in unused
// registers are the usual reason, and they are noise.
func firstCallDivergence(sides [2]*side, a, b []compare.Call, sym [2]compare.SymbolizeFunc) (int, string, bool) {
	ma, mb := maskDeadArgs(sides, a, b)
	if idx, reason, ok := compare.FirstCallDivergence(ma, mb, sym); ok {
		return idx, reason, ok
	}
	idx, reason, ok := compare.FirstCallDivergence(a, b, sym)
	if ok {
		reason += " (an argument register the function does not read)"
	}
	return idx, reason, ok
}

// plural returns "1 thing" or "n things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
