package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// ArrivalState is how one side's run to a sync point ended.
type ArrivalState string

// The ways a run to a sync point ends.
const (
	Reached ArrivalState = "reached" // at the sync point, the hit-th time
	Stopped ArrivalState = "stopped" // stopped elsewhere (an exception the stub reports, a watchpoint)
	Exited  ArrivalState = "exited"  // the guest ended
	Timeout ArrivalState = "timeout" // still running at the bound; interrupted
)

// Arrival is how one side's run to a sync point ended.
type Arrival struct {
	State ArrivalState
	// PC is where the side stood: the sync point, where it stopped or was
	// interrupted, or the last PC seen before it exited (0 if none).
	PC     uint64
	Detail string
	// Calls are the trace.functions entries hit on the way.
	Calls []compare.Call
}

// Reached reports whether the side got to the sync point.
func (a Arrival) Reached() bool { return a.State == Reached }

// Reach drives both sides of p to sync point k concurrently, recording
// calls at the given function entries (by side) on the way. A side that
// exits, stops elsewhere or does not arrive in time is reported in its
// Arrival; the error is for a QEMU that failed (a *guest.Fault), a
// scenario problem, or the run's own end.
func (e *Engine) Reach(ctx context.Context, p guest.Pair, k int, trace [2]map[uint64]string) ([2]Arrival, error) {
	sp := &e.sc.Sync[k]
	defer e.saveInjections(p, k)
	if sp.Now {
		return e.standing(ctx, p)
	}
	var addrs [2]uint64
	for i, g := range p {
		a, err := g.Resolve(sp.Break)
		if err != nil {
			return [2]Arrival{}, &guest.ScenarioError{Err: fmt.Errorf("%s: guest %s: %w", sp.Pos, g.Name(), err)}
		}
		addrs[i] = a
	}
	bound := e.WaitBound(ctx, sp)
	var arr [2]Arrival
	err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		a, err := e.runTo(ctx, g, k, addrs[i], sp.Hit, sp.At == scenario.AtReturn, bound, trace[i])
		arr[i] = a
		return err
	})
	return arr, err
}

// standing is the arrival of each side at a break: now point: where it
// stands, without running.
func (e *Engine) standing(ctx context.Context, p guest.Pair) ([2]Arrival, error) {
	var arr [2]Arrival
	err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		if g.Exited() {
			arr[i] = Arrival{State: Exited, PC: g.LastPC(), Detail: fmt.Sprintf("had exited (status %s)", fmtCode(g.ExitStatus()))}
			return nil
		}
		pc, err := g.PC(ctx)
		if err != nil {
			return err
		}
		arr[i] = Arrival{State: Reached, PC: pc, Detail: "stood at " + g.Loc(pc).String()}
		return nil
	})
	return arr, err
}

// runTo runs g until the hit-th arrival at addr, and with atReturn on
// until the function entered there returns to its caller.
func (e *Engine) runTo(ctx context.Context, g *guest.Guest, k int, addr uint64, hit int, atReturn bool, bound time.Duration, trace map[uint64]string) (Arrival, error) {
	if g.Exited() {
		return Arrival{State: Exited, PC: g.LastPC(), Detail: fmt.Sprintf("had exited (status %s)", fmtCode(g.ExitStatus()))}, nil
	}
	if err := g.Insert(ctx, g.BPKind, addr); err != nil {
		return Arrival{}, err
	}
	for a := range trace {
		if err := g.Insert(ctx, rsp.Software, a); err != nil {
			return Arrival{}, err
		}
	}
	if err := e.armInjections(ctx, g); err != nil {
		return Arrival{}, err
	}
	defer func() {
		if !g.Exited() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.Timeouts.Cleanup)
			g.RemoveAll(rctx) // best effort: the next wait inserts its own
			cancel()
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var a Arrival
	hits := 0
	// Waiting for the return: where to, and the stack pointer at the
	// entry (the return pops above it; a recursive call's does not).
	returning := false
	var retAddr, entrySP uint64
	for {
		st, err := g.Cont(wctx)
		if ctx.Err() != nil {
			return a, fmt.Errorf("guest %s: run to sync point %d: %w", g.Name(), k+1, context.Cause(ctx))
		}
		var fault *guest.Fault
		switch {
		case errors.As(err, &fault):
			return a, err
		case err != nil && errors.Is(err, context.DeadlineExceeded):
			// Interrupted at the bound: the guest runs, elsewhere.
			pc, perr := g.PC(ctx)
			if perr != nil {
				return a, perr
			}
			a.State, a.PC = Timeout, pc
			a.Detail = fmt.Sprintf("did not arrive within %s; interrupted at %s", bound.Round(time.Millisecond), g.Loc(pc))
			return a, nil
		case err != nil:
			return a, guest.Infraf("guest %s: run to sync point %d: %w", g.Name(), k+1, err)
		case st.Exited():
			a.State, a.PC = Exited, g.LastPC()
			a.Detail = endText(g)
			return a, nil
		}
		pc, err := g.PC(ctx)
		if err != nil {
			if errors.Is(err, guest.ErrExited) && g.Exited() {
				// It stopped (a panic's stop reply) and QEMU ended
				// before its registers could be read.
				a.State, a.PC = Exited, g.LastPC()
				a.Detail = endText(g)
				return a, nil
			}
			return a, err
		}
		a.PC = pc
		matched, err := e.injectAt(ctx, g, k, pc)
		if err != nil {
			return a, err
		}
		if name, ok := trace[pc]; ok {
			matched = true
			c, err := e.RecordCall(ctx, g, name, pc)
			if err != nil {
				return a, err
			}
			a.Calls = append(a.Calls, c)
		}
		if returning && pc == retAddr {
			matched = true
			sp, err := g.SP(ctx)
			if err != nil {
				return a, err
			}
			if sp > entrySP {
				a.State = Reached
				a.Detail = fmt.Sprintf("reached the return of %s to %s", g.Loc(addr), g.Loc(pc))
				return a, nil
			}
		}
		if pc == addr {
			matched = true
			if hits++; hits >= hit && !returning {
				if !atReturn {
					a.State = Reached
					a.Detail = "reached " + g.Loc(pc).String()
					return a, nil
				}
				if retAddr, entrySP, err = g.ReturnAddress(ctx); err != nil {
					return a, err
				}
				if err := g.Insert(ctx, g.BPKind, retAddr); err != nil {
					return a, err
				}
				returning = true
			}
		}
		if !matched {
			// Nobody asked it to stop here: QEMU may have stopped the VM
			// itself (an internal error) rather than the guest.
			if f := g.Healthy(ctx); f != nil {
				return a, f
			}
			if g.Exited() {
				a.State, a.PC = Exited, pc
				a.Detail = endText(g)
				return a, nil
			}
			a.State = Stopped
			a.Detail = fmt.Sprintf("stopped at %s (%s)", g.Loc(pc), stopName(st))
			return a, nil
		}
	}
}

// endText says how a guest that has ended ended: "exited with status 0",
// or "panicked (QEMU exited with status 0)" when QEMU reported a guest
// panic, which QEMU's exit status alone does not show.
func endText(g *guest.Guest) string {
	return exitText(endState(g), g.ExitStatus())
}

// endState is the state of a guest that has ended: "panicked", "reset"
// or "exited" (guest.Guest.Ended).
func endState(g *guest.Guest) string { return g.Ended() }

func stopName(st rsp.StopReply) string {
	if st.Watch != "" {
		return fmt.Sprintf("%s %#x", st.Watch, st.WatchAddr)
	}
	return fmt.Sprintf("signal %d", st.Signal)
}

func fmtCode(c *int) string {
	if c == nil {
		return "unknown"
	}
	return fmt.Sprint(*c)
}

// TraceAddrs returns the entries of trace.functions on g, by address, for
// the wait towards sync point k.
func (e *Engine) TraceAddrs(g *guest.Guest, k int) map[uint64]string {
	if len(e.sc.Trace.Functions) == 0 || g.Syms == nil {
		return nil
	}
	if g.Spec.Accel == scenario.AccelKVM && k == 0 {
		// Before the first sync point the kernel may not be in place yet;
		// an int3 would be overwritten, and there are only four debug
		// registers (PROTOCOL.md §5).
		return nil
	}
	out := map[uint64]string{}
	for _, pat := range e.sc.Trace.Functions {
		for _, sym := range g.Syms.Match(pat) {
			out[sym.Addr] = sym.Name
		}
	}
	return out
}

// RecordCall captures a function entry with its argument registers.
func (e *Engine) RecordCall(ctx context.Context, g *guest.Guest, name string, pc uint64) (compare.Call, error) {
	c := compare.Call{Name: name, Loc: g.Loc(pc)}
	if len(g.Arch.ArgRegs) == 0 {
		return c, nil
	}
	regs, err := g.Registers(ctx, g.Arch.ArgRegs...)
	if err != nil {
		return c, fmt.Errorf("arguments at %s: %w", name, err)
	}
	for _, n := range g.Arch.ArgRegs {
		v, _ := regs[n].Uint64()
		c.Args = append(c.Args, v)
		c.ArgNames = append(c.ArgNames, n)
	}
	return c, nil
}

// callFrames turns recorded calls into call-path frames.
func callFrames(calls []compare.Call) []compare.Frame {
	fs := make([]compare.Frame, 0, len(calls))
	for _, c := range calls {
		f := compare.Frame{Location: c.Loc}
		if len(c.Args) > 0 {
			f.Args = map[string]string{}
			for j, v := range c.Args {
				f.Args[argName(c, j)] = fmt.Sprintf("%#x", v)
			}
		}
		fs = append(fs, f)
	}
	return fs
}

func argName(c compare.Call, j int) string {
	if j < len(c.ArgNames) {
		return c.ArgNames[j]
	}
	return fmt.Sprintf("arg%d", j)
}
