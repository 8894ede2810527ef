package lockstep

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// stepWindow single-steps both sides sp.Step instructions after sync point
// k. With one binary it compares the selected registers after every
// instruction and reports the first divergent one. Between different
// builds the instruction streams are not comparable, so it compares the
// function entries each side makes, with their argument registers.
func (r *run) stepWindow(ctx context.Context, k int, sp *scenario.SyncPoint) error {
	if !r.same {
		r.note("sync point %d: step window compared by function entries (different builds: instruction streams differ)", k+1)
		return r.stepWindowCalls(ctx, k, sp)
	}
	if r.traceable() && sp.Step >= traceWindowMin {
		n := len(r.res.Divergences)
		done, err := r.traceFrom(ctx, r.sides, k, k, sp.Compare, sp.Step, nil,
			fmt.Sprintf("step window after sync point %d (trace engine): instruction %%d", k+1))
		if err != nil {
			r.note("sync point %d: trace engine failed (%v); stepping through the gdbstub instead", k+1, err)
		}
		if done && err == nil {
			r.res.Syncs[k].Steps = sp.Step
			if len(r.res.Divergences) > n {
				r.res.Syncs[k].Steps = r.res.Divergences[len(r.res.Divergences)-1].Step
			}
			return nil
		}
	}
	st, err := r.lockstepSteps(ctx, r.sides, k, sp.Compare, sp.Step, nil)
	if err != nil {
		return err
	}
	r.res.Syncs[k].Steps = st.n
	return r.recordSteps(ctx, r.sides, k, st, fmt.Sprintf("step window after sync point %d", k+1))
}

// stepped is the outcome of lockstepSteps.
type stepped struct {
	n      int     // instructions stepped on each side
	exited [2]bool // a side ended
	// diverged is set when the compared registers differ after step n;
	// prev holds the instruction each side executed at that step.
	diverged bool
	diffs    []compare.RegisterDiff
	prev     [2]uint64
	ropt     compare.RegOptions
	stopped  bool // stop() ended the walk
}

// lockstepSteps single-steps both sides together up to max instructions,
// comparing the registers of spec after each one, until they differ, a
// side exits, or stop (when set) says both sides are where they should end.
func (r *run) lockstepSteps(ctx context.Context, sides [2]*side, k int, spec scenario.CompareSpec, max int, stop func(pcs [2]uint64) bool) (stepped, error) {
	var st stepped
	var names [2][]string
	for i, s := range sides {
		n, err := regNames(s.rsp.Layout(), spec)
		if err != nil {
			return st, &ScenarioError{Err: fmt.Errorf("sync point %d: %w", k+1, err)}
		}
		names[i] = withPC(n, s.arch.PC)
	}
	st.ropt = compare.RegOptions{Ignore: spec.Ignore, Flags: r.flagBits()}
	if !r.opts.NoNoise {
		st.ropt.Noise = r.sc.Noise.Registers
	}
	var before [2]compare.Regs
	for i, s := range sides {
		vals, err := s.rsp.ReadRegisterSet(ctx, names[i]...)
		if err != nil {
			return st, infraf("guest %s: registers: %w", s.name(), err)
		}
		before[i] = toRegs(names[i], vals)
		st.prev[i] = beUint(before[i].Values[s.arch.PC])
	}
	last := time.Now()
	for n := 1; n <= max; n++ {
		var regs [2]compare.Regs
		g, gctx := errgroup.WithContext(ctx)
		for i, s := range sides {
			g.Go(func() error {
				// QEMU 7.2 now and then answers 's' without executing the
				// instruction (the vCPU left its loop for an exit request
				// first): every register is as it was. Step again, a
				// bounded number of times, or the two sides would fall an
				// instruction apart; a real self-loop ("jmp .") costs the
				// retries and moves on.
				for try := 0; ; try++ {
					reply, err := s.step(gctx)
					if err != nil {
						return infraf("guest %s: step %d after sync point %d: %w", s.name(), n, k+1, err)
					}
					if reply.Kind == 'W' || reply.Kind == 'X' || s.exited {
						st.exited[i] = true
						return nil
					}
					vals, err := s.rsp.ReadRegisterSet(gctx, names[i]...)
					if err != nil {
						return infraf("guest %s: registers after step %d: %w", s.name(), n, err)
					}
					regs[i] = toRegs(names[i], vals)
					if try >= maxStepRetries || !sameRegs(before[i], regs[i]) {
						break
					}
					s.lostSteps++
				}
				before[i] = regs[i]
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return st, err
		}
		st.n = n
		if st.exited[0] || st.exited[1] {
			return st, nil
		}
		diffs := compare.Registers(regs[0], regs[1], st.ropt)
		for _, d := range diffs {
			if !st.ropt.IsNoise(d) {
				st.diverged, st.diffs = true, diffs
				return st, nil
			}
		}
		var pcs [2]uint64
		for i, s := range sides {
			pcs[i] = beUint(regs[i].Values[s.arch.PC])
		}
		st.prev = pcs
		if stop != nil && stop(pcs) {
			st.stopped = true
			return st, nil
		}
		if time.Since(last) > 200*time.Millisecond {
			r.progress("stepping", k)
			last = time.Now()
		}
	}
	return st, nil
}

// recordSteps records what lockstepSteps found as divergences at sync k.
func (r *run) recordSteps(ctx context.Context, sides [2]*side, k int, st stepped, where string) error {
	switch {
	case st.exited[0] != st.exited[1]:
		r.exitDivergence(k, st.n)
	case st.diverged:
		return r.instructionDivergence(ctx, sides, k, st.n, st.prev, st.diffs, st.ropt, where)
	}
	return nil
}

// traceWindowMin is the step window length from which the trace engine
// is used when both sides are TCG: it costs about 3 s to start a traced
// pair (docs/performance.md), which gdbstub stepping at about 1,500
// lockstep steps/s spends in some 4,500 steps.
const traceWindowMin = 5000

// maxStepRetries bounds the re-steps of a step that changed nothing.
const maxStepRetries = 3

// sameRegs reports whether two captures of one side hold the same values.
func sameRegs(a, b compare.Regs) bool {
	if len(a.Values) != len(b.Values) {
		return false
	}
	for n, v := range a.Values {
		if !bytes.Equal(v, b.Values[n]) {
			return false
		}
	}
	return true
}

func withPC(names []string, pc string) []string {
	for _, n := range names {
		if n == pc {
			return names
		}
	}
	return append(names, pc)
}

func beUint(b []byte) uint64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return u
}

// instructionDivergence records the first divergent instruction: the one
// each side executed at prev, after which diffs appeared.
func (r *run) instructionDivergence(ctx context.Context, sides [2]*side, k, n int, prev [2]uint64, diffs []compare.RegisterDiff, ropt compare.RegOptions, where string) error {
	id := &compare.InstructionDiff{Granularity: "instruction", Registers: diffs}
	var pcs [2]compare.Location
	for i, s := range sides {
		pcs[i] = s.loc(prev[i])
		text, code := r.disasm(ctx, s, prev[i])
		id.Disasm[i] = text
		id.Bytes[i] = hex.EncodeToString(code)
		if bt, err := r.backtrace(ctx, s); err == nil {
			id.CallPath[i] = bt
		}
	}
	noise := true
	for _, d := range diffs {
		if !ropt.IsNoise(d) {
			noise = false
		}
	}
	summary := fmt.Sprintf("%s: %s `%s` changed %s", where, pcs[0], id.Disasm[0], compare.RegisterSummary(diffs[0]))
	if len(diffs) > 1 {
		summary += fmt.Sprintf(" (+%d more registers)", len(diffs)-1)
	}
	r.diverge(k, compare.Divergence{Kind: compare.KindInstruction, Step: n, PC: pcs, Summary: summary,
		Instruction: id, Noise: noise})
	return nil
}

// disasm disassembles the instruction at pc on side s, from the ELF when
// the address is in it and from guest memory otherwise.
func (r *run) disasm(ctx context.Context, s *side, pc uint64) (string, []byte) {
	const maxInsn = 16
	var code []byte
	if s.syms != nil {
		code, _ = s.syms.ReadAt(pc, maxInsn)
	}
	if code == nil {
		b, err := s.rsp.ReadMemory(ctx, pc, maxInsn)
		if err != nil {
			return fmt.Sprintf("(unreadable: %v)", err), nil
		}
		code = b
	}
	if s.arch.Disasm == nil {
		return "(no disassembler for " + s.arch.Name + ")", code
	}
	text, n, err := s.arch.Disasm(code, pc, func(a uint64) string { return s.loc(a).String() })
	if err != nil {
		return fmt.Sprintf("(bad instruction: %v)", err), code
	}
	return text, code[:n]
}

// stepWindowCalls steps each side sp.Step instructions and compares the
// function entries made in that window, by name, order and arguments.
func (r *run) stepWindowCalls(ctx context.Context, k int, sp *scenario.SyncPoint) error {
	var calls [2][]compare.Call
	var exited [2]bool
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range r.sides {
		g.Go(func() error {
			for n := 0; n < sp.Step; n++ {
				st, err := s.step(gctx)
				if err != nil {
					return infraf("guest %s: step %d after sync point %d: %w", s.name(), n+1, k+1, err)
				}
				if st.Kind == 'W' || st.Kind == 'X' || s.exited {
					exited[i] = true
					return nil
				}
				pc, err := s.pc(gctx)
				if err != nil {
					return infra(err)
				}
				if l, ok := s.symbolize(pc); ok && l.Offset == 0 && s.isFunc(l.Symbol) {
					c, err := r.recordCall(gctx, s, l.Symbol, pc)
					if err != nil {
						return infra(err)
					}
					calls[i] = append(calls[i], c)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r.res.Syncs[k].Steps = sp.Step
	if exited[0] != exited[1] {
		r.exitDivergence(k, 0)
		return nil
	}
	a, b := calls[0], calls[1]
	if !exited[0] {
		// The same number of instructions covers different amounts of work
		// in two builds: compare the calls both windows saw.
		m := min(len(a), len(b))
		a, b = a[:m], b[:m]
	}
	idx, reason, diverged := firstCallDivergence(r.sides, a, b, r.callSymbolizers())
	if !diverged {
		return nil
	}
	id := &compare.InstructionDiff{Granularity: "function"}
	var pcs [2]compare.Location
	for i, cs := range [2][]compare.Call{a, b} {
		if idx < len(cs) {
			pcs[i] = cs[idx].Loc
			id.Disasm[i] = "call " + cs[idx].Name
		}
	}
	r.diverge(k, compare.Divergence{Kind: compare.KindInstruction, PC: pcs, Summary: reason, Instruction: id})
	return nil
}

// exitDivergence records that one guest exited and the other did not.
func (r *run) exitDivergence(k, step int) {
	var ed compare.ExitDiff
	var pcs [2]compare.Location
	for i, s := range r.sides {
		ed.State[i] = "running"
		if s.exited {
			ed.State[i] = "exited"
			ed.ExitCode[i] = s.exitStatus()
		}
	}
	summary := fmt.Sprintf("a %s, b %s", exitText(ed.State[0], ed.ExitCode[0]), exitText(ed.State[1], ed.ExitCode[1]))
	if step > 0 {
		summary = fmt.Sprintf("step %d: %s", step, summary)
	}
	r.diverge(k, compare.Divergence{Kind: compare.KindExit, Step: step, PC: pcs, Summary: summary, Exit: &ed})
}

func exitText(state string, code *int) string {
	if state == "exited" {
		return "exited with status " + fmtCode(code)
	}
	return "still " + state
}

// finishGuests lets both guests run on after the last sync point and
// records an exit divergence when they end differently. Both get a short
// bound; when only one has ended by then, the other gets longer (up to the
// rest of the run), so a slow machine is not mistaken for a hang.
func (r *run) finishGuests(ctx context.Context) error {
	const first, longest = 5 * time.Second, 30 * time.Second
	var states [2]string
	wait := func(s *side, bound time.Duration) (string, error) {
		if s.exited {
			return "exited", nil
		}
		if err := s.removeAll(ctx); err != nil {
			return "", infra(err)
		}
		wctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		st, err := s.cont(wctx)
		switch {
		case err == nil && (st.Kind == 'W' || st.Kind == 'X' || s.exited), s.exited || isClosed(err):
			r.exitedArrival(ctx, s, arrival{})
			return "exited", nil
		case err == nil:
			return "stopped", nil
		case ctx.Err() != nil:
			return "", infra(ctx.Err())
		}
		return "running", nil
	}
	var g errgroup.Group
	for i, s := range r.sides {
		g.Go(func() (err error) {
			states[i], err = wait(s, first)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, s := range r.sides {
		if states[i] == "running" && states[1-i] == "exited" {
			bound := min(longest, r.waitBound(ctx, &scenario.SyncPoint{}))
			st, err := wait(s, bound)
			if err != nil {
				return err
			}
			states[i] = st
		}
	}
	for i := range r.sides {
		r.res.Sides[i].State = states[i]
	}
	ca, cb := r.sides[0].exitStatus(), r.sides[1].exitStatus()
	if states[0] != states[1] || (ca != nil && cb != nil && *ca != *cb) {
		ed := compare.ExitDiff{State: states, ExitCode: [2]*int{ca, cb}}
		summary := fmt.Sprintf("after the last sync point: a %s, b %s", exitText(states[0], ca), exitText(states[1], cb))
		r.diverge(-1, compare.Divergence{Kind: compare.KindExit, Summary: summary, Exit: &ed})
	}
	return nil
}

func isClosed(err error) bool {
	return err != nil && errors.Is(err, rsp.ErrClosed)
}
