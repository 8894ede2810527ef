package engine

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TraceWindowMin is the step window length from which the trace engine is
// used when both sides are TCG: it costs about 3 s to start a traced pair
// (docs/performance.md), which gdbstub stepping at about 1,500 lockstep
// steps/s spends in some 4,500 steps.
const TraceWindowMin = 5000

// maxStepRetries bounds the re-steps of a step that changed nothing.
const maxStepRetries = 3

// progressEvery is how often stepping reports progress.
const progressEvery = 200 * time.Millisecond

// traceProgressEvery is how many instructions a trace comparison compares
// between progress reports (some milliseconds' worth).
const traceProgressEvery = 1 << 16

// Where says where an instruction divergence was found, given the number
// of instructions stepped from the starting sync point.
type Where func(n int) string

// Window is what a step window found.
type Window struct {
	// Steps is the number of instructions stepped on each side.
	Steps       int
	Divergences []compare.Divergence
}

// StepWindow single-steps both sides sp.Step instructions after sync
// point k. With one binary it compares the selected registers after every
// instruction and reports the first divergent one. Between different
// builds the instruction streams are not comparable, so it compares the
// function entries each side makes, with their argument registers. A side
// that exits inside the window is an exit divergence; both exiting at the
// same instruction ends the window.
func (e *Engine) StepWindow(ctx context.Context, p guest.Pair, k int) (Window, error) {
	sp := &e.sc.Sync[k]
	e.Progress(PhaseStepping, k)
	if !e.cfg.Same {
		e.note("sync point %d: step window compared by function entries (different builds: instruction streams differ)", k+1)
		return e.stepWindowCalls(ctx, p, k, sp)
	}
	where := func(n int) string { return fmt.Sprintf("step window after sync point %d: instruction %d", k+1, n) }
	if e.Traceable(p) && sp.Step >= TraceWindowMin {
		w, done, err := e.TraceFrom(ctx, p, k, k, sp.Compare, sp.Step, nil, func(n int) string {
			return fmt.Sprintf("step window after sync point %d (trace engine): instruction %d", k+1, n)
		})
		switch {
		case err != nil && ctx.Err() != nil:
			return w, err
		case err != nil:
			e.note("sync point %d: trace engine failed (%v); stepping through the gdbstub instead", k+1, err)
		case done:
			w.Steps = sp.Step
			if n := len(w.Divergences); n > 0 {
				w.Steps = w.Divergences[n-1].Step
			}
			return w, nil
		}
	}
	st, err := e.LockstepSteps(ctx, p, k, sp.Compare, sp.Step, nil)
	if err != nil {
		return Window{}, err
	}
	divs, err := e.StepFindings(ctx, p, k, st, where)
	return Window{Steps: st.N, Divergences: divs}, err
}

// Stepped is the outcome of LockstepSteps.
type Stepped struct {
	N      int     // instructions stepped on each side
	Exited [2]bool // a side ended
	// Diverged is set when step N made registers differ that were equal
	// before it; Diffs are those registers (and flag bits), Prev the
	// instruction each side executed at that step.
	Diverged bool
	Diffs    []compare.RegisterDiff
	Prev     [2]uint64
	ROpt     compare.RegOptions
	Stopped  bool // stop() ended the walk
	// Before names the registers that already differed when the walk
	// started: a step is not blamed for them.
	Before []string
	// Skipped counts steps after which one side had executed two
	// instructions (an accelerator anomaly; the other side was stepped
	// once more to stay in lockstep).
	Skipped [2]int
	// Rep is the per-iteration view when step N diverged on a REP string
	// instruction (compared at its retirement): each side's iterations.
	Rep   [2]int64
	InRep bool
}

// LockstepSteps single-steps both sides together up to max instructions,
// comparing the registers of spec after each one, until a step makes them
// differ, a side exits, or stop (when set) says both sides are where they
// should end. A step is blamed only for what it changed: registers (and
// flag bits) that differed before it, from the start of the walk or an
// earlier step, are not a new divergence. A side that a single step
// carried two instructions on (seen under nested KVM) is stepping out of
// line, not diverging: the other side is stepped once more, and the
// anomaly is counted in Skipped.
func (e *Engine) LockstepSteps(ctx context.Context, p guest.Pair, k int, spec scenario.CompareSpec, max int, stop func(pcs [2]uint64) bool) (Stepped, error) {
	var st Stepped
	var names [2][]string
	for i, g := range p {
		n, err := RegNames(g.T.Layout(), spec)
		if err != nil {
			return st, &guest.ScenarioError{Err: fmt.Errorf("sync point %d: %w", k+1, err)}
		}
		names[i] = withPC(n, g.Arch.PC)
	}
	st.ROpt = e.regOptions(p, spec)
	var before [2]compare.Regs
	for i, g := range p {
		vals, err := g.Registers(ctx, names[i]...)
		if err != nil {
			return st, err
		}
		before[i] = ToRegs(names[i], vals)
		st.Prev[i] = beUint(before[i].Values[g.Arch.PC])
	}
	differing := diffKeys(compare.Registers(before[0], before[1], st.ROpt))
	st.Before = slices.Sorted(maps.Keys(differing))
	defer func() {
		for i, g := range p {
			if st.Skipped[i] > 0 {
				e.note("guest %s: %s carried the guest two instructions on (an accelerator stepping anomaly, not a divergence); the other side was stepped once more to stay in lockstep",
					g.Name(), compare.Plural(st.Skipped[i], "single step", "single steps"))
			}
		}
	}()
	last := time.Now()
	for n := 1; n <= max; n++ {
		var regs [2]compare.Regs
		err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
			var err error
			regs[i], st.Exited[i], err = e.stepOnce(ctx, g, names[i], before[i], k, n)
			return err
		})
		if err != nil {
			return st, err
		}
		st.N = n
		if st.Exited[0] || st.Exited[1] {
			return st, nil
		}
		if skipped, err := e.realign(ctx, p, names, st.Prev, &regs, &st.Exited, k, n); err != nil {
			return st, err
		} else if skipped >= 0 {
			st.Skipped[skipped]++
			if st.Exited[0] || st.Exited[1] {
				return st, nil
			}
		}
		stepped := before
		before = regs
		diffs := compare.Registers(regs[0], regs[1], st.ROpt)
		if fresh := freshDiffs(diffs, differing); len(fresh) > 0 {
			for _, d := range fresh {
				if !st.ROpt.IsNoise(d) {
					st.Diverged, st.Diffs = true, fresh
					st.Rep, st.InRep = repIterations(ctx, p, st.Prev, stepped, regs)
					return st, nil
				}
			}
		}
		differing = diffKeys(diffs)
		var pcs [2]uint64
		for i, g := range p {
			pcs[i] = beUint(regs[i].Values[g.Arch.PC])
		}
		st.Prev = pcs
		if stop != nil && stop(pcs) {
			st.Stopped = true
			return st, nil
		}
		if time.Since(last) > progressEvery {
			e.Progress(PhaseStepping, k)
			last = time.Now()
		}
	}
	return st, nil
}

// stepOnce single-steps g and reads its registers. QEMU 7.2 now and then
// answers 's' without executing the instruction (the vCPU left its loop
// for an exit request first): every register is as it was. It steps
// again, a bounded number of times, or the two sides would fall an
// instruction apart; a real self-loop ("jmp .") costs the retries and
// moves on.
func (e *Engine) stepOnce(ctx context.Context, g *guest.Guest, names []string, before compare.Regs, k, n int) (compare.Regs, bool, error) {
	for try := 0; ; try++ {
		reply, err := g.Step(ctx)
		if err != nil {
			return compare.Regs{}, false, fmt.Errorf("step %d after sync point %d: %w", n, k+1, err)
		}
		if reply.Exited() {
			return compare.Regs{}, true, nil
		}
		vals, err := g.Registers(ctx, names...)
		if err != nil {
			return compare.Regs{}, false, fmt.Errorf("after step %d: %w", n, err)
		}
		regs := ToRegs(names, vals)
		if try >= maxStepRetries || !sameRegs(before, regs) {
			return e.retireRegs(ctx, g, names, before, regs)
		}
		g.LostSteps++
	}
}

// realign checks the landing PCs of a step that both sides started at the
// same PC. When one side is where the instruction falls through to and
// the other one instruction further (the accelerator executed two), it
// steps the first side once more, replacing its registers, and returns
// its index; -1 when nothing was out of line.
func (e *Engine) realign(ctx context.Context, p guest.Pair, names [2][]string, prev [2]uint64, regs *[2]compare.Regs, exited *[2]bool, k, n int) (int, error) {
	var pcs [2]uint64
	for i, g := range p {
		pcs[i] = beUint(regs[i].Values[g.Arch.PC])
	}
	if prev[0] != prev[1] || pcs[0] == pcs[1] {
		return -1, nil
	}
	next, ok := p[0].FallThrough(ctx, prev[0])
	if !ok {
		return -1, nil
	}
	for i, g := range p {
		if pcs[i] != next {
			continue
		}
		after, ok := g.FallThrough(ctx, next)
		if !ok || pcs[1-i] != after {
			return -1, nil
		}
		// Side 1-i executed the instruction at next too: catch up.
		r, ex, err := e.stepOnce(ctx, g, names[i], regs[i], k, n)
		if err != nil {
			return -1, err
		}
		regs[i], exited[i] = r, ex
		return 1 - i, nil
	}
	return -1, nil
}

// diffKeys names what differs: "reg" for a whole register, "reg.BIT" for
// each differing named flag bit.
func diffKeys(diffs []compare.RegisterDiff) map[string]bool {
	keys := make(map[string]bool, len(diffs))
	for _, d := range diffs {
		if len(d.Bits) == 0 {
			keys[d.Name] = true
		}
		for _, b := range d.Bits {
			keys[d.Name+"."+b] = true
		}
	}
	return keys
}

// freshDiffs keeps the parts of diffs that were not in before: registers
// that were equal, and flag bits that were equal.
func freshDiffs(diffs []compare.RegisterDiff, before map[string]bool) []compare.RegisterDiff {
	var out []compare.RegisterDiff
	for _, d := range diffs {
		if len(d.Bits) == 0 {
			if !before[d.Name] {
				out = append(out, d)
			}
			continue
		}
		var bits []string
		for _, b := range d.Bits {
			if !before[d.Name+"."+b] && !before[d.Name] {
				bits = append(bits, b)
			}
		}
		if len(bits) > 0 {
			d.Bits = bits
			out = append(out, d)
		}
	}
	return out
}

// StepFindings turns what LockstepSteps found into divergences at sync
// point k: an exit divergence when the sides ended differently, the first
// divergent instruction when the registers differ.
func (e *Engine) StepFindings(ctx context.Context, p guest.Pair, k int, st Stepped, where Where) ([]compare.Divergence, error) {
	switch {
	case st.Exited[0] || st.Exited[1]:
		if d, ok := e.ExitDivergence(ctx, p, k, st.N, st.Prev); ok {
			return []compare.Divergence{d}, nil
		}
	case st.Diverged:
		d := e.InstructionDivergence(ctx, p, k, st.N, st.Prev, st.Diffs, st.ROpt, where(st.N))
		if st.InRep {
			d.Summary += repSummary(st.Rep)
		}
		if len(st.Before) > 0 {
			d.Summary += fmt.Sprintf("; %s already differed when stepping began", strings.Join(st.Before, ", "))
		}
		return []compare.Divergence{d}, nil
	}
	return nil, nil
}

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
	if slices.Contains(names, pc) {
		return names
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

// InstructionDivergence describes the first divergent instruction: the
// one each side executed at prev, after which diffs appeared, n
// instructions after the starting sync point.
func (e *Engine) InstructionDivergence(ctx context.Context, p guest.Pair, k, n int, prev [2]uint64, diffs []compare.RegisterDiff, ropt compare.RegOptions, where string) compare.Divergence {
	id := &compare.InstructionDiff{Granularity: compare.ByInstruction, Registers: diffs}
	pcs := locs(p, prev)
	for i, g := range p {
		text, code := g.Disasm(ctx, prev[i])
		id.Disasm[i] = text
		id.Bytes[i] = hex.EncodeToString(code)
		if bt, _, err := g.Backtrace(ctx); err == nil {
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
	return e.At(k, compare.Divergence{Kind: compare.KindInstruction, Step: n, PC: pcs, Summary: summary,
		Instruction: id, Noise: noise})
}

// stepWindowCalls steps each side sp.Step instructions and compares the
// function entries made in that window, by name, order and arguments.
func (e *Engine) stepWindowCalls(ctx context.Context, p guest.Pair, k int, sp *scenario.SyncPoint) (Window, error) {
	var calls [2][]compare.Call
	var exited [2]bool
	var steps [2]int
	err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		var pc uint64
		for n := 0; n < sp.Step; n++ {
			var ex bool
			var err error
			pc, ex, err = e.StepInsn(ctx, g, pc)
			if err != nil {
				return fmt.Errorf("step %d after sync point %d: %w", n+1, k+1, err)
			}
			steps[i] = n + 1
			if ex {
				exited[i] = true
				return nil
			}
			if l, ok := g.Symbolize(pc); ok && l.Offset == 0 && g.IsFunc(l.Symbol) {
				c, err := e.RecordCall(ctx, g, l.Symbol, pc)
				if err != nil {
					return err
				}
				calls[i] = append(calls[i], c)
			}
		}
		return nil
	})
	w := Window{Steps: max(steps[0], steps[1])}
	if err != nil {
		return w, err
	}
	if exited[0] || exited[1] {
		if d, ok := e.ExitDivergence(ctx, p, k, 0, [2]uint64{p[0].LastPC(), p[1].LastPC()}); ok {
			w.Divergences = append(w.Divergences, d)
			return w, nil
		}
	}
	a, b := calls[0], calls[1]
	if !exited[0] {
		// The same number of instructions covers different amounts of work
		// in two builds: compare the calls both windows saw.
		m := min(len(a), len(b))
		a, b = a[:m], b[:m]
	}
	idx, reason, diverged, _ := FirstCallDivergence(p, a, b, e.CallSymbolizers(p), sp.Compare.Registers)
	if !diverged {
		return w, nil
	}
	w.Divergences = append(w.Divergences, e.CallDivergence(k, idx, a, b, reason))
	return w, nil
}

// ExitDivergence describes sides that ended differently inside a window
// after sync point k: one exited and the other did not, or both exited
// with different statuses. ok is false when both exited alike (the window
// simply ended). step is the instruction count (0 when unknown); last
// holds each side's PC before the end.
func (e *Engine) ExitDivergence(ctx context.Context, p guest.Pair, k, step int, last [2]uint64) (compare.Divergence, bool) {
	var ed compare.ExitDiff
	var pcs [2]compare.Location
	for i, g := range p {
		ed.State[i] = "running"
		pc := last[i]
		if g.Exited() {
			ed.State[i] = endState(g)
			ed.ExitCode[i] = g.ExitStatus()
			if pc == 0 {
				pc = g.LastPC()
			}
		} else if cur, err := g.PC(ctx); err == nil {
			pc = cur
		}
		if pc != 0 {
			pcs[i] = g.Loc(pc)
		}
	}
	if ed.State[0] == ed.State[1] && fmtCode(ed.ExitCode[0]) == fmtCode(ed.ExitCode[1]) {
		return compare.Divergence{}, false
	}
	summary := fmt.Sprintf("a %s, b %s", exitText(ed.State[0], ed.ExitCode[0]), exitText(ed.State[1], ed.ExitCode[1]))
	if step > 0 {
		summary = fmt.Sprintf("step %d: %s", step, summary)
	}
	return e.At(k, compare.Divergence{Kind: compare.KindExit, Step: step, PC: pcs, Summary: summary, Exit: &ed}), true
}

func exitText(state string, code *int) string {
	switch {
	case state == "exited":
		return "exited with status " + fmtCode(code)
	case state == "panicked" && (code == nil || *code < 0):
		return "panicked (QEMU holds it stopped)"
	case state == "panicked":
		return "panicked (QEMU exited with status " + fmtCode(code) + ")"
	case state == "reset":
		return "reset itself (under -no-reboot QEMU exited with status " + fmtCode(code) + ")"
	}
	return "still " + state
}

// Finish lets both guests run on after the last sync point and reports an
// exit divergence when they end differently. Both get a short bound; when
// only one has ended by then, the other gets longer (up to the rest of the
// run), so a slow machine is not mistaken for a hang. It returns each
// side's final state: "exited", "stopped" or "running".
func (e *Engine) Finish(ctx context.Context, p guest.Pair) ([2]string, []compare.Divergence, error) {
	var states [2]string
	ended := [2]bool{p[0].Exited(), p[1].Exited()}
	wait := func(ctx context.Context, g *guest.Guest, bound time.Duration) (string, error) {
		if g.Exited() {
			return "exited", nil
		}
		if err := g.RemoveAll(ctx); err != nil {
			return "", err
		}
		wctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		st, err := g.Cont(wctx)
		switch {
		case ctx.Err() != nil:
			return "", fmt.Errorf("guest %s: after the last sync point: %w", g.Name(), context.Cause(ctx))
		case err == nil && st.Exited():
			return endState(g), nil
		case err == nil:
			if f := g.Healthy(ctx); f != nil {
				return "", f
			}
			if g.Exited() {
				return endState(g), nil
			}
			return "stopped", nil
		case wctx.Err() != nil && st.Kind != 0:
			return "running", nil
		}
		return "", err
	}
	to := p[0].Timeouts
	err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) (err error) {
		states[i], err = wait(ctx, g, to.FinishFirst)
		return err
	})
	if err != nil {
		return states, nil, err
	}
	for i, g := range p {
		if states[i] == "running" && (states[1-i] == "exited" || states[1-i] == "panicked" || states[1-i] == "reset") {
			st, err := wait(ctx, g, min(to.FinishLongest, e.WaitBound(ctx, &scenario.SyncPoint{})))
			if err != nil {
				return states, nil, err
			}
			states[i] = st
		}
	}
	ca, cb := p[0].ExitStatus(), p[1].ExitStatus()
	if ended[0] || ended[1] {
		// A side that ended in the last sync point's window was compared
		// there (ExitDivergence): the end of the run is no new finding.
		return states, nil, nil
	}
	if states[0] != states[1] || (ca != nil && cb != nil && *ca != *cb) {
		ed := compare.ExitDiff{State: states, ExitCode: [2]*int{ca, cb}}
		var pcs [2]compare.Location
		for i, g := range p {
			if pc := g.LastPC(); pc != 0 {
				pcs[i] = g.Loc(pc)
			}
		}
		summary := fmt.Sprintf("after the last sync point: a %s, b %s", exitText(states[0], ca), exitText(states[1], cb))
		return states, []compare.Divergence{e.At(-1, compare.Divergence{Kind: compare.KindExit, PC: pcs, Summary: summary, Exit: &ed})}, nil
	}
	return states, nil, nil
}
