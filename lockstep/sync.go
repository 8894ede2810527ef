package lockstep

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// arrival is how one side's run to a sync point ended.
type arrival struct {
	reached bool
	state   string // "reached", "stopped", "exited", "timeout"
	pc      uint64
	detail  string
	calls   []compare.Call // trace.functions entries hit on the way
}

// waitBound is how long a side may take to reach sync point k: the point's
// own timeout, or the rest of the run less a reserve for capture and
// teardown.
func (r *run) waitBound(ctx context.Context, sp *scenario.SyncPoint) time.Duration {
	rest := time.Until(r.start.Add(r.sc.Timeout))
	if dl, ok := ctx.Deadline(); ok {
		rest = time.Until(dl)
	}
	rest -= 3 * time.Second
	if rest < time.Second {
		rest = time.Second
	}
	if sp.Timeout > 0 && sp.Timeout < rest {
		return sp.Timeout
	}
	return rest
}

// syncPoint drives both sides to sync point k, captures and compares. It
// reports whether the run can go on to the next point.
func (r *run) syncPoint(ctx context.Context, k int) (bool, error) {
	sp := &r.sc.Sync[k]
	sr := &r.res.Syncs[k]
	t0 := time.Now()
	defer func() { sr.Duration = time.Since(t0) }()
	r.progress("running", k)

	var addrs [2]uint64
	for i, s := range r.sides {
		a, err := s.resolve(sp.Break)
		if err != nil {
			return false, &ScenarioError{Err: fmt.Errorf("%s: guest %s: %w", sp.Pos, s.name(), err)}
		}
		addrs[i] = a
	}
	bound := r.waitBound(ctx, sp)
	var arr [2]arrival
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range r.sides {
		g.Go(func() error {
			a, err := r.runTo(gctx, s, k, addrs[i], sp.Hit, bound, r.traceAddrs(s, k))
			arr[i] = a
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return false, infra(err)
	}
	for i, s := range r.sides {
		sr.Reached[i] = arr[i].reached
		sr.PC[i] = s.loc(arr[i].pc)
	}

	if len(r.sc.Trace.Functions) > 0 {
		fa, fb := callFrames(arr[0].calls), callFrames(arr[1].calls)
		if d := compare.CallPath("trace", fa, fb); d != nil {
			r.diverge(k, compare.Divergence{Kind: compare.KindCallPath, PC: sr.PC,
				Summary: compare.CallPathSummary(d), CallPath: d,
				Noise: r.callPathNoise(d)})
		}
	}

	if !arr[0].reached || !arr[1].reached {
		return false, r.arrivalDivergence(k, arr)
	}

	caps, err := r.captureBoth(ctx, sp)
	if err != nil {
		return false, err
	}
	r.progress("comparing", k)
	if err := r.compareAt(k, sp, caps); err != nil {
		return false, err
	}
	// Save this point before a step window moves the guests on, so that a
	// later divergence can localise from here without a restart.
	if err := r.checkpointSyncPoint(ctx, k); err != nil {
		return false, err
	}
	if r.shouldLocalize(k) {
		if err := r.localize(ctx, k); err != nil {
			return false, err
		}
		if err := r.localizeWrites(ctx, k); err != nil {
			return false, err
		}
	}
	if sp.Step > 0 {
		r.progress("stepping", k)
		if err := r.stepWindow(ctx, k, sp); err != nil {
			return false, err
		}
	}
	sr.Status = "match"
	if sr.Divergences > 0 {
		sr.Status = "noise"
		for _, d := range r.res.Divergences {
			if d.Sync == k && !d.Noise {
				sr.Status = "diverge"
				break
			}
		}
	}
	return true, nil
}

func callFrames(calls []compare.Call) []compare.Frame {
	fs := make([]compare.Frame, 0, len(calls))
	for _, c := range calls {
		f := compare.Frame{Location: c.Loc}
		if len(c.Args) > 0 {
			f.Args = map[string]string{}
			for j, v := range c.Args {
				name := fmt.Sprintf("arg%d", j)
				if j < len(c.ArgNames) {
					name = c.ArgNames[j]
				}
				f.Args[name] = fmt.Sprintf("%#x", v)
			}
		}
		fs = append(fs, f)
	}
	return fs
}

// arrivalDivergence records that at most one side reached sync point k.
func (r *run) arrivalDivergence(k int, arr [2]arrival) error {
	sr := &r.res.Syncs[k]
	sr.Status = "unreached"
	var ad compare.ArrivalDiff
	for i, s := range r.sides {
		ad.Reached[i] = arr[i].reached
		ad.State[i] = arr[i].state
		ad.Detail[i] = arr[i].detail
		if arr[i].state == "exited" {
			ad.ExitCode[i] = s.exitStatus()
		}
	}
	if !arr[0].reached && !arr[1].reached && arr[0].state == arr[1].state &&
		arr[0].detail == arr[1].detail {
		// Both sides ended the same way without reaching the point: the
		// guests agree, the scenario asked for something neither does.
		r.note("neither side reached sync point %d (%s): both %s", k+1, r.sc.Sync[k].Break, arr[0].detail)
		return nil
	}
	summary := ""
	for i, s := range r.sides {
		if i > 0 {
			summary += "; "
		}
		summary += s.name() + " " + arr[i].detail
	}
	r.diverge(k, compare.Divergence{Kind: compare.KindArrival, PC: sr.PC, Summary: summary, Arrival: &ad})
	return nil
}

// runTo runs side s until the hit-th arrival at addr, recording trace
// function entries on the way. A side that exits, stops elsewhere or does
// not arrive within bound is reported in the arrival, not as an error;
// errors are reserved for a lost gdbstub and the like.
func (r *run) runTo(ctx context.Context, s *side, k int, addr uint64, hit int, bound time.Duration, trace map[uint64]string) (arrival, error) {
	if s.exited {
		return arrival{state: "exited", detail: fmt.Sprintf("had exited (status %s)", fmtCode(s.exitStatus()))}, nil
	}
	if err := s.insert(ctx, s.bpKind, addr); err != nil {
		return arrival{}, err
	}
	for a := range trace {
		if err := s.insert(ctx, rsp.Software, a); err != nil {
			return arrival{}, err
		}
	}
	defer func() {
		// Best effort: the guest may have exited, taking its stub along.
		if !s.exited {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.removeAll(rctx)
			cancel()
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var a arrival
	hits := 0
	for {
		st, err := s.cont(wctx)
		if ctx.Err() != nil {
			// The run itself was cancelled or ran out of time; the stub
			// connection may be gone with the guests.
			return a, fmt.Errorf("guest %s: run to sync point %d: %w", s.name(), k+1, context.Cause(ctx))
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				// The stub interrupted the guest: say where it is.
				a.state = "timeout"
				pc, perr := s.pc(ctx)
				if perr != nil {
					a.detail = fmt.Sprintf("did not arrive within %s and could not be read: %v", bound, perr)
					return a, nil
				}
				a.pc = pc
				a.detail = fmt.Sprintf("did not arrive within %s; interrupted at %s", bound.Round(time.Millisecond), s.loc(pc))
				return a, nil
			}
			if s.exited || errors.Is(err, rsp.ErrClosed) {
				return r.exitedArrival(ctx, s, a), nil
			}
			return a, fmt.Errorf("guest %s: run to sync point %d: %w", s.name(), k+1, err)
		}
		if s.exited || st.Kind == 'W' || st.Kind == 'X' {
			s.exited = true
			return r.exitedArrival(ctx, s, a), nil
		}
		pc, err := s.pc(ctx)
		if err != nil {
			return a, err
		}
		a.pc = pc
		matched := false
		if name, ok := trace[pc]; ok {
			matched = true
			c, err := r.recordCall(ctx, s, name, pc)
			if err != nil {
				return a, err
			}
			a.calls = append(a.calls, c)
		}
		if pc == addr {
			matched = true
			hits++
			if hits >= hit {
				a.reached, a.state = true, "reached"
				a.detail = "reached " + s.loc(pc).String()
				return a, nil
			}
		}
		if !matched {
			a.state = "stopped"
			a.detail = fmt.Sprintf("stopped at %s (%s)", s.loc(pc), stopName(st))
			return a, nil
		}
	}
}

func stopName(st rsp.StopReply) string {
	if st.Watch != "" {
		return fmt.Sprintf("%s %#x", st.Watch, st.WatchAddr)
	}
	return fmt.Sprintf("signal %d", st.Signal)
}

// exitedArrival describes a side whose guest exited before arriving.
func (r *run) exitedArrival(ctx context.Context, s *side, a arrival) arrival {
	s.exited = true
	// The process exit status arrives a moment after the stub's W reply.
	if s.inst != nil {
		select {
		case <-s.inst.Exited():
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
	a.state = "exited"
	a.detail = fmt.Sprintf("exited with status %s", fmtCode(s.exitStatus()))
	return a
}

func fmtCode(c *int) string {
	if c == nil {
		return "unknown"
	}
	return fmt.Sprint(*c)
}

// traceAddrs returns the entries of trace.functions on side s, by address.
func (r *run) traceAddrs(s *side, k int) map[uint64]string {
	if len(r.sc.Trace.Functions) == 0 || s.syms == nil {
		return nil
	}
	if s.guest.Accel == scenario.AccelKVM && k == 0 {
		// Before the first sync point the kernel may not be in place yet;
		// an int3 would be overwritten, and there are only four debug
		// registers (PROTOCOL.md §5).
		if !s.traceNoted {
			r.note("guest %s: trace.functions starts after sync point 1 under kvm (software breakpoints need the code in place)", s.name())
			s.traceNoted = true
		}
		return nil
	}
	out := map[uint64]string{}
	for _, pat := range r.sc.Trace.Functions {
		for _, sym := range s.syms.Match(pat) {
			out[sym.Addr] = sym.Name
		}
	}
	return out
}

// recordCall captures a function entry with its argument registers.
func (r *run) recordCall(ctx context.Context, s *side, name string, pc uint64) (compare.Call, error) {
	c := compare.Call{Name: name, Loc: s.loc(pc)}
	if len(s.arch.ArgRegs) == 0 {
		return c, nil
	}
	regs, err := s.rsp.ReadRegisterSet(ctx, s.arch.ArgRegs...)
	if err != nil {
		return c, fmt.Errorf("guest %s: read arguments at %s: %w", s.name(), name, err)
	}
	for _, n := range s.arch.ArgRegs {
		v, _ := regs[n].Uint64()
		c.Args = append(c.Args, v)
		c.ArgNames = append(c.ArgNames, n)
	}
	return c, nil
}
