package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Injected is a fault the engine injected into one side (scenario
// inject): a deliberate difference.
type Injected struct {
	// Index is the injection's index in the scenario's inject list.
	Index int
	Side  int
	// Sync is the sync point (0-based) the guest stood at (an injection
	// at a sync point) or was running to (at a function's entry or
	// return) when it was injected.
	Sync int
	// PC is where the guest stood.
	PC compare.Location
}

// injState is one guest's progress through the scenario's function
// injections: calls counted, which fired, which wait for their return.
type injState struct {
	hits  map[int]int
	fired map[int]bool
	// ret is, by injection, the return a return injection waits for.
	ret map[int]retWait
	// armed are the addresses of the breakpoints injections put in
	// during the current wait: a stop there is theirs, fired or not.
	armed map[uint64]bool
}

type retWait struct{ addr, sp uint64 }

// injStop is where a guest was last injected: its pc and step count, and
// the registers set there.
type injStop struct {
	pc    uint64
	steps int
	k     int
	regs  []string
}

// notWhereInjected returns sp, or a copy of it that does not compare the
// registers an injection set at the very stop where a side stands now:
// an injected register is a deliberate difference, not a divergence,
// where it was set.
func (e *Engine) notWhereInjected(p guest.Pair, k int, sp *scenario.SyncPoint, arr [2]Arrival) *scenario.SyncPoint {
	e.injMu.Lock()
	defer e.injMu.Unlock()
	var regs []string
	for i, g := range p {
		if st, ok := e.injStop[g]; ok && st.k == k && st.pc == arr[i].PC && st.steps == g.Steps {
			regs = append(regs, st.regs...)
		}
	}
	if len(regs) == 0 {
		return sp
	}
	c := *sp
	c.Compare.Ignore = append(append([]string(nil), sp.Compare.Ignore...), regs...)
	return &c
}

// injections returns the state of g's function injections.
func (e *Engine) injections(g *guest.Guest) *injState {
	e.injMu.Lock()
	defer e.injMu.Unlock()
	if e.inj == nil {
		e.inj = map[*guest.Guest]*injState{}
	}
	st, ok := e.inj[g]
	if !ok {
		st = &injState{hits: map[int]int{}, fired: map[int]bool{}, ret: map[int]retWait{}, armed: map[uint64]bool{}}
		e.inj[g] = st
	}
	return st
}

// funcInjections reports whether the scenario injects at a function's
// entry or return on g's side.
func (e *Engine) funcInjections(g *guest.Guest) bool {
	for _, in := range e.sc.Inject {
		if in.Side == g.Side && in.Sync < 0 {
			return true
		}
	}
	return false
}

// armInjections inserts the breakpoints g's pending function injections
// need while it runs to a sync point: the function's entry until the
// injection fires, and the return address a return injection waits for.
func (e *Engine) armInjections(ctx context.Context, g *guest.Guest) error {
	if !e.funcInjections(g) {
		return nil
	}
	st := e.injections(g)
	clear(st.armed)
	for i, in := range e.sc.Inject {
		if in.Side != g.Side || in.Sync >= 0 || st.fired[i] {
			continue
		}
		if w, ok := st.ret[i]; ok {
			if err := g.Insert(ctx, g.BPKind, w.addr); err != nil {
				return err
			}
			st.armed[w.addr] = true
			continue
		}
		addr, err := g.Resolve(in.Func)
		if err != nil {
			return &guest.ScenarioError{Err: fmt.Errorf("%s: guest %s: %w", in.Pos, g.Name(), err)}
		}
		if err := g.Insert(ctx, g.BPKind, addr); err != nil {
			return err
		}
		st.armed[addr] = true
	}
	return nil
}

// injectAt handles a stop of g at pc while it runs to sync point k: it
// counts calls of the injected functions, fires entry injections, sets up
// and fires return injections. matched reports whether an injection
// breakpoint accounts for the stop.
func (e *Engine) injectAt(ctx context.Context, g *guest.Guest, k int, pc uint64) (matched bool, err error) {
	if !e.funcInjections(g) {
		return false, nil
	}
	st := e.injections(g)
	matched = st.armed[pc]
	for i := range e.sc.Inject {
		in := &e.sc.Inject[i]
		if in.Side != g.Side || in.Sync >= 0 || st.fired[i] {
			continue
		}
		if w, ok := st.ret[i]; ok {
			if pc != w.addr {
				continue
			}
			matched = true
			sp, err := g.SP(ctx)
			if err != nil {
				return matched, err
			}
			if sp <= w.sp {
				// A deeper (recursive) call returning here.
				continue
			}
			delete(st.ret, i)
			if err := e.apply(ctx, g, k, i, pc, true); err != nil {
				return matched, err
			}
			st.fired[i] = true
			continue
		}
		addr, err := g.Resolve(in.Func)
		if err != nil || pc != addr {
			continue
		}
		matched = true
		if st.hits[i]++; st.hits[i] < in.Hit {
			continue
		}
		if !in.Return {
			if err := e.apply(ctx, g, k, i, pc, true); err != nil {
				return matched, err
			}
			st.fired[i] = true
			continue
		}
		ret, sp, err := g.ReturnAddress(ctx)
		if err != nil {
			return matched, err
		}
		st.ret[i] = retWait{addr: ret, sp: sp}
		if err := g.Insert(ctx, g.BPKind, ret); err != nil {
			return matched, err
		}
		st.armed[ret] = true
	}
	return matched, nil
}

// Leave applies the injections at sync point k to the guests standing
// there: after the point was compared (and its step window stepped), as
// they leave it. Each is reported (Config.OnInject) for the run's own
// guests.
func (e *Engine) Leave(ctx context.Context, p guest.Pair, k int) error {
	return e.leave(ctx, p, k, true)
}

// Reinject applies the injections at sync point k again to a pair
// rewound there (relaunched and replayed, or restored from a snapshot
// saved before them), without reporting them: the run already did.
func (e *Engine) Reinject(ctx context.Context, p guest.Pair, k int) error {
	return e.leave(ctx, p, k, false)
}

// saveInjections keeps a copy of each guest's function-injection state
// as it reaches sync point k, for RestoreInjections.
func (e *Engine) saveInjections(p guest.Pair, k int) {
	for _, g := range p {
		if g == nil || !e.funcInjections(g) {
			continue
		}
		st := e.injections(g)
		e.injMu.Lock()
		if e.injSaved == nil {
			e.injSaved = map[*guest.Guest]map[int]*injState{}
		}
		if e.injSaved[g] == nil {
			e.injSaved[g] = map[int]*injState{}
		}
		e.injSaved[g][k] = st.clone()
		e.injMu.Unlock()
	}
}

// RestoreInjections puts back each guest's function-injection state as
// it was at sync point k: a guest restored from a snapshot of k counts
// calls from there again.
func (e *Engine) RestoreInjections(p guest.Pair, k int) {
	e.injMu.Lock()
	defer e.injMu.Unlock()
	for _, g := range p {
		if st, ok := e.injSaved[g][k]; ok && g != nil {
			e.inj[g] = st.clone()
		}
	}
}

func (st *injState) clone() *injState {
	return &injState{hits: maps.Clone(st.hits), fired: maps.Clone(st.fired), ret: maps.Clone(st.ret), armed: map[uint64]bool{}}
}

func (e *Engine) leave(ctx context.Context, p guest.Pair, k int, record bool) error {
	for i, in := range e.sc.Inject {
		if in.Sync != k || p[in.Side] == nil || p[in.Side].Exited() {
			continue
		}
		g := p[in.Side]
		pc, err := g.PC(ctx)
		if err != nil {
			return err
		}
		if err := e.apply(ctx, g, k, i, pc, record); err != nil {
			return err
		}
	}
	return nil
}

// apply sets what injection i sets, on g standing at pc, and with record
// reports it for the run's own guests (not for replays).
func (e *Engine) apply(ctx context.Context, g *guest.Guest, k, i int, pc uint64, record bool) error {
	in := &e.sc.Inject[i]
	for _, r := range in.Regs {
		if err := g.SetRegister(ctx, r.Name, r.Value); err != nil {
			return fmt.Errorf("injection %d (%s): %w", i+1, in.Where(), err)
		}
	}
	if m := in.Memory; m != nil {
		addr := m.Address
		if !m.HasAddress {
			a, err := g.Resolve(m.Symbol)
			if err != nil {
				return &guest.ScenarioError{Err: fmt.Errorf("%s: guest %s: %w", m.Pos, g.Name(), err)}
			}
			addr = a
		}
		if err := g.WriteMemory(ctx, addr+m.Offset, m.Bytes); err != nil {
			if errors.Is(err, rsp.ErrRefused) {
				// QEMU is fine: the guest has no such writable memory
				// there (unmapped, or a physical address).
				return &guest.ScenarioError{Err: fmt.Errorf("%s: injection %d (%s): guest %s cannot write %d bytes at %#x, the virtual address is not mapped there: %w",
					m.Pos, i+1, in.Where(), g.Name(), len(m.Bytes), addr+m.Offset, err)}
			}
			return fmt.Errorf("injection %d (%s): %w", i+1, in.Where(), err)
		}
	}
	e.injMu.Lock()
	if e.injStop == nil {
		e.injStop = map[*guest.Guest]injStop{}
	}
	stop := e.injStop[g]
	// The point this stop can be compared at: the one the guest runs to,
	// or, after leaving sync point k, a break: now at k+1.
	at := k
	if in.Sync >= 0 {
		at = k + 1
	}
	if stop.pc != pc || stop.steps != g.Steps || stop.k != at {
		stop = injStop{pc: pc, steps: g.Steps, k: at}
	}
	for _, r := range in.Regs {
		stop.regs = append(stop.regs, r.Name)
	}
	e.injStop[g] = stop
	e.injMu.Unlock()
	e.log.Info("injected", "side", g.Name(), "tag", g.Tag, "where", in.Where(), "what", in.What(), "pc", fmt.Sprintf("%#x", pc))
	if record && g.Tag == scenario.SideNames[g.Side] && e.cfg.OnInject != nil {
		e.cfg.OnInject(Injected{Index: i, Side: g.Side, Sync: k, PC: g.Loc(pc)})
	}
	return nil
}

// InjectedRegisters are the registers the scenario's injections set on
// either side: a localisation after an injection does not compare them
// (they differ by design), so that it finds the first consequence.
func (e *Engine) InjectedRegisters() []string {
	var out []string
	seen := map[string]bool{}
	for _, in := range e.sc.Inject {
		for _, r := range in.Regs {
			if !seen[r.Name] {
				seen[r.Name] = true
				out = append(out, r.Name)
			}
		}
	}
	return out
}
