package engine

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/trace"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TraceStats are the figures of one trace comparison.
type TraceStats struct {
	Compared, Skipped uint64
	Compare           time.Duration
}

// Traceable reports whether the trace engine can compare p: enabled, one
// binary on both sides, both under TCG, one architecture whose -d cpu log
// the trace reads (trace.ArchRegs: x86_64, aarch64, riscv64), and QEMU 7.2 or later (older versions are
// refused when the version is known).
func (e *Engine) Traceable(p guest.Pair) bool {
	if !e.cfg.Trace || !e.cfg.Same || e.cfg.Launcher == nil {
		return false
	}
	if len(e.sc.Inject) > 0 {
		// The traced pairs are relaunched and never injected.
		return false
	}
	for _, sp := range e.sc.Sync {
		if sp.Now {
			// A point where the guests stand has no place in a trace.
			return false
		}
	}
	for _, g := range p {
		if g.IsAttached() || g.Spec.Accel != scenario.AccelTCG || trace.ArchRegs(g.Spec.Arch) == nil || g.Spec.Arch != p[0].Spec.Arch {
			return false
		}
		if g.M != nil && !versionAtLeast(g.M.Version(), 7, 2) {
			return false
		}
	}
	return true
}

// versionAtLeast reports whether a "major.minor[.micro]" version is at
// least major.minor; an unparsable version counts as new enough.
func versionAtLeast(v string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(v, "%d.%d", &ma, &mi); err != nil {
		return true
	}
	return ma > major || ma == major && mi >= minor
}

// TraceFrom compares the two guests with the trace engine from sync point
// from (p stands there) for at most max instructions, or until stop says
// so, and describes the first divergent instruction as found at sync point
// k. It launches a second, traced pair whose logs stream through FIFOs,
// walks both logs through sync points 0..from, compares them instruction by
// instruction, and then drives p to the divergent instruction with a
// breakpoint and its hit count, steps it once and confirms the divergence
// through the gdbstub. done reports whether it settled the question: a
// divergence, or a note that there is none; on false the caller steps
// through the gdbstub instead (with a note when err is non-nil).
func (e *Engine) TraceFrom(ctx context.Context, p guest.Pair, k, from int, spec scenario.CompareSpec, limit int, stop func(uint64, *trace.State) bool, where Where) (w Window, done bool, err error) {
	t0 := time.Now()
	for j := 0; j <= from; j++ {
		if e.sc.Sync[j].At == scenario.AtReturn {
			return w, false, fmt.Errorf("trace engine: sync point %d is at a return, which the trace does not follow", j+1)
		}
	}
	rs := trace.ArchRegs(p[0].Spec.Arch)
	if rs == nil {
		return w, false, fmt.Errorf("trace engine: no -d cpu parser for %s", p[0].Spec.Arch)
	}
	topt, ropt, names, err := e.traceOptions(p, k, spec, rs)
	if err != nil {
		return w, false, err
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tp, readers, cleanup, err := e.launchTraced(tctx, p)
	defer cleanup()
	if err != nil {
		return w, false, err
	}
	var walkers [2]*trace.Walker
	for i, rd := range readers {
		src, err := trace.NewSource(p[i].Spec.Arch, rd)
		if err != nil {
			return w, false, err
		}
		walkers[i] = trace.NewWalker(src)
	}

	// Walk both logs through sync points 0..from: hit counts are counted
	// from the previous sync point, as Reach counts them.
	var skipped uint64
	for j := 0; j <= from; j++ {
		spj := &e.sc.Sync[j]
		var n [2]uint64
		err := tp.Each(tctx, func(ctx context.Context, i int, g *guest.Guest) error {
			addr, err := g.Resolve(spj.Break)
			if err != nil {
				return err
			}
			if n[i], err = walkers[i].Seek(ctx, addr, spj.Hit); err != nil {
				return fmt.Errorf("guest %s: sync point %d in the trace: %w", g.Name(), j+1, err)
			}
			return nil
		})
		if err != nil {
			return w, false, err
		}
		skipped += n[0]
	}

	// Report progress now and then while the logs are compared, or a
	// progress line would sit still for the whole comparison.
	phase := PhaseLocalising
	if from == k {
		phase = PhaseStepping
	}
	// Every traceProgressEvery instructions: a progress line throttles
	// what it draws, and the count is what it shows.
	e.traced.Store(0)
	defer e.traced.Store(0)
	topt.Stop = func(i uint64, s *trace.State) bool {
		if i > 0 && i%traceProgressEvery == 0 {
			e.traced.Store(i)
			e.Progress(phase, k)
		}
		return stop != nil && stop(i, s)
	}
	// One binary: either side's code says which PCs hold REP string
	// instructions, counted as one instruction each (rep.go).
	if rs.Arch() == "x86_64" {
		topt.RepString = repPredicate(ctx, p[0])
	}
	topt.Max = uint64(limit) + 1 // state 0 is sync point from itself
	tc := time.Now()
	d, err := trace.CompareFrom(tctx, walkers[0], walkers[1], topt)
	if err != nil {
		return w, false, fmt.Errorf("trace compare: %w", err)
	}

	elapsed := time.Since(tc)
	e.Logf("trace engine: %s after skipping %d states to %s; compared %d instructions in %s (%.0f/s), %d+%d repeated states and %d+%d REP iterations collapsed",
		d.String(), skipped, PointName(from), d.Index, elapsed.Round(time.Millisecond), float64(d.Index)/max(elapsed.Seconds(), 1e-9), d.Dups[0], d.Dups[1], d.Reps[0], d.Reps[1])
	if e.cfg.TraceObserver != nil {
		e.cfg.TraceObserver(TraceStats{Compared: d.Index, Skipped: skipped, Compare: elapsed})
	}
	// The traced guests are frozen on their full pipes: end them now, so
	// the gdbstub pair has the CPUs to itself.
	cancel()
	cleanup()

	switch d.Outcome {
	case trace.SameUntilMax:
		if from != k {
			e.note("localisation: no divergence within localize.max_steps (%d instructions) after %s (trace engine)", limit, PointName(from))
		}
		return w, true, nil
	case trace.SameUntilStop:
		e.note("localisation: the registers matched at every one of the %d instructions from %s to sync point %d (trace engine); the divergence is in memory or call path only", d.Index-1, PointName(from), k+1)
		return w, true, nil
	case trace.SameUntilEOF, trace.EndedA, trace.EndedB:
		// An exit is recorded from the gdbstub pair; let stepping get there.
		e.Logf("trace engine: %s; stepping through the gdbstub to record it", d.String())
		return w, false, nil
	}
	if d.Index == 0 {
		return w, false, fmt.Errorf("trace: the guests already differ at %s", PointName(from))
	}
	prev, err := e.reachTraced(ctx, p, d, names, rs)
	if err != nil {
		return w, false, err
	}
	if e.cfg.TraceStopBefore {
		w.Steps = int(d.Index) - 1
		return w, true, nil
	}
	// Execute the divergent instruction on both sides and compare, as
	// LockstepSteps does after each step.
	var regs [2]compare.Regs
	err = p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		_, exited, err := e.StepInsn(ctx, g, prev[i])
		if err != nil {
			return fmt.Errorf("step the divergent instruction: %w", err)
		}
		if exited {
			return fmt.Errorf("%w: guest %s exited on the divergent instruction", guest.ErrTraceMismatch, g.Name())
		}
		vals, err := g.Registers(ctx, names[i]...)
		if err != nil {
			return fmt.Errorf("after the divergent instruction: %w", err)
		}
		regs[i] = ToRegs(names[i], vals)
		return nil
	})
	if err != nil {
		return w, false, err
	}
	diffs := compare.Registers(regs[0], regs[1], ropt)
	real := false
	for _, df := range diffs {
		if !ropt.IsNoise(df) {
			real = true
		}
	}
	if !real {
		return w, false, fmt.Errorf("%w: no register differs after the instruction at %#x (trace: %s)", guest.ErrTraceMismatch, prev[0], d.String())
	}
	n := int(d.Index)
	div := e.InstructionDivergence(ctx, p, k, n, prev, diffs, ropt, where(n))
	if d.InRep {
		div.Summary += repSummary([2]int64{int64(d.RepIters[0]), int64(d.RepIters[1])})
	}
	w.Divergences = append(w.Divergences, div)
	w.Steps = n
	e.Logf("trace engine: done in %s", time.Since(t0).Round(time.Millisecond))
	return w, true, nil
}

// traceOptions maps the compared gdbstub registers and the ignore and
// noise rules onto the trace's register indices (of rs, the log's
// register set, whose names are the gdbstub's) and flag mask. It returns
// the gdbstub register names per side (with the PC) for the confirmation
// after the step.
func (e *Engine) traceOptions(p guest.Pair, k int, spec scenario.CompareSpec, rs *trace.RegSet) (trace.Options, compare.RegOptions, [2][]string, error) {
	var topt trace.Options
	var names [2][]string
	for i, g := range p {
		n, err := RegNames(g.T.Layout(), spec)
		if err != nil {
			return topt, compare.RegOptions{}, names, &guest.ScenarioError{Err: fmt.Errorf("sync point %d: %w", k+1, err)}
		}
		names[i] = withPC(n, g.Arch.PC)
	}
	ropt := e.regOptions(p, spec)
	rules := append(append([]string(nil), spec.Ignore...), ropt.Noise...)
	whole, mask := TraceIgnore(rs, rules, ropt.Flags)
	var unseen []string
	seen := map[int]bool{}
	for _, n := range names[0] {
		idx := rs.Index(strings.ToLower(n))
		if idx < 0 {
			unseen = append(unseen, n)
			continue
		}
		if whole[idx] || seen[idx] {
			continue
		}
		seen[idx] = true
		topt.Registers = append(topt.Registers, idx)
	}
	if len(topt.Registers) == 0 {
		return topt, ropt, names, fmt.Errorf("trace: none of the compared registers is in the cpu log")
	}
	if len(unseen) > 0 {
		e.Logf("trace engine: registers %v are not in the cpu log; the gdbstub compares them at the divergent instruction only", unseen)
	}
	topt.FlagMask = mask
	return topt, ropt, names, nil
}

// TraceIgnore turns ignore rules ("eflags", "eflags.RF", "cpsr.N") into
// indices of rs to leave out and a mask of bits of its flags register to
// ignore.
func TraceIgnore(rs *trace.RegSet, rules []string, flags map[string][]compare.FlagBit) (map[int]bool, uint64) {
	whole := map[int]bool{}
	var mask uint64
	for _, rule := range rules {
		reg, bit, hasBit := strings.Cut(strings.ToLower(strings.TrimSpace(rule)), ".")
		idx := rs.Index(reg)
		if idx < 0 {
			continue
		}
		if !hasBit || idx != rs.Flags() {
			// Bits of other registers are not compared by mask: leave
			// the whole register to the gdbstub confirmation.
			whole[idx] = true
			continue
		}
		found := false
		for name, bits := range flags {
			if rs.Index(strings.ToLower(name)) != idx {
				continue
			}
			for _, b := range bits {
				if strings.EqualFold(b.Name, bit) {
					w := max(b.Width, 1)
					mask |= (uint64(1)<<w - 1) << b.Shift
					found = true
				}
			}
		}
		if !found {
			whole[idx] = true
		}
	}
	return whole, mask
}

// kernelRanges returns the executable PT_LOAD ranges of the guest's ELF
// (its symbols file, else its kernel), for -dfilter; nil when there is no
// ELF to read.
func kernelRanges(g scenario.Guest) []trace.Range {
	for _, path := range []string{g.Symbols, g.Kernel} {
		if path == "" {
			continue
		}
		f, err := elf.Open(path)
		if err != nil {
			continue
		}
		var out []trace.Range
		for _, pr := range f.Progs {
			if pr.Type == elf.PT_LOAD && pr.Flags&elf.PF_X != 0 && pr.Memsz > 0 {
				out = append(out, trace.Range{Lo: pr.Vaddr, Hi: pr.Vaddr + pr.Memsz - 1})
			}
		}
		f.Close()
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// launchTraced starts two traced guests like p, their logs streaming
// through FIFOs, and resumes them. QEMU opens its -D log before it creates
// the QMP socket and blocks there until a reader opens the FIFO, so each
// reader is opened concurrently with the launch. cleanup (always non-nil,
// safe to call twice) kills the traced guests and removes the FIFOs.
func (e *Engine) launchTraced(ctx context.Context, p guest.Pair) (guest.Pair, [2]io.ReadCloser, func(), error) {
	var tp guest.Pair
	var readers [2]io.ReadCloser
	dir, err := os.MkdirTemp(p[0].Dir, "trace-")
	if err != nil {
		return tp, readers, func() {}, fmt.Errorf("trace: fifo dir: %w", err)
	}
	done := false
	cleanup := func() {
		if done {
			return
		}
		done = true
		for _, rd := range readers {
			if rd != nil {
				rd.Close()
			}
		}
		// The traced guests hold nothing worth a graceful quit, and a vCPU
		// blocked on its pipe would delay one: kill them at once.
		dead, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancel()
		tp.Close(dead)
		os.RemoveAll(dir)
	}
	var fifos [2]*trace.FIFO
	for i := range tp {
		f, err := trace.OpenFIFO(ctx, dir, scenario.SideNames[i]+".fifo")
		if err != nil {
			return tp, readers, cleanup, err
		}
		f.Idle = p[i].Timeouts.TraceIdle
		fifos[i] = f
	}
	// Two goroutines per side: the launch, and the reader that lets it
	// get past opening its log.
	errs := make(chan error, 4)
	for i, src := range p {
		go func() {
			g, err := e.cfg.Launcher.Launch(ctx, guest.Config{Side: i, Tag: scenario.SideNames[i] + "-trace", Spec: src.Spec,
				Syms: src.Syms, TraceLog: fifos[i].Path(), TraceArgs: trace.FilterArgs(kernelRanges(src.Spec)...)})
			if err != nil {
				fifos[i].Abort()
				errs <- guest.Infra(fmt.Errorf("trace engine: %w", err))
				return
			}
			tp[i] = g
			errs <- nil
		}()
		go func() {
			rd, err := fifos[i].Open()
			if err != nil {
				errs <- fmt.Errorf("trace engine: guest %s: %w", src.Name(), err)
				return
			}
			readers[i] = rd
			errs <- nil
		}()
	}
	var first error
	for range 4 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return tp, readers, cleanup, first
	}
	for _, g := range tp {
		// From here on the gdbstub is not touched again: a vCPU blocked on
		// a full pipe cannot answer a stop request.
		if err := g.T.Resume(ctx); err != nil {
			return tp, readers, cleanup, guest.Infraf("trace engine: guest %s: resume: %w", g.Name(), err)
		}
	}
	return tp, readers, cleanup, nil
}

// reachTraced drives p, at sync point k-1, to the state before the
// divergent instruction d.Prev: a breakpoint at its PC, hit d.PrevHits+1
// times counting from sync point k-1 itself. It checks the registers there
// against the trace and returns the PCs.
func (e *Engine) reachTraced(ctx context.Context, p guest.Pair, d trace.Divergence, names [2][]string, rs *trace.RegSet) ([2]uint64, error) {
	var pcs [2]uint64
	err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		want := d.Prev[i]
		pcs[i] = want.PC
		pc, err := g.PC(ctx)
		if err != nil {
			return err
		}
		stops := d.PrevHits[i] + 1
		if pc == want.PC {
			stops-- // sync point k-1 itself is the first hit
		}
		if stops > 0 {
			if err := g.Insert(ctx, g.BPKind, want.PC); err != nil {
				return err
			}
			for n := uint64(0); n < stops; n++ {
				st, err := g.Cont(ctx)
				if err != nil {
					return fmt.Errorf("run to the divergent instruction (stop %d of %d): %w", n+1, stops, err)
				}
				if st.Exited() {
					return fmt.Errorf("%w: guest %s exited before the divergent instruction", guest.ErrTraceMismatch, g.Name())
				}
				if pc, err = g.PC(ctx); err != nil {
					return err
				}
				if pc != want.PC {
					return fmt.Errorf("%w: guest %s stopped at %s, not at %#x", guest.ErrTraceMismatch, g.Name(), g.Loc(pc), want.PC)
				}
			}
			if err := g.Remove(ctx, want.PC); err != nil {
				return err
			}
		}
		vals, err := g.Registers(ctx, names[i]...)
		if err != nil {
			return fmt.Errorf("before the divergent instruction: %w", err)
		}
		for _, n := range names[i] {
			idx := rs.Index(strings.ToLower(n))
			v, ok := vals[n]
			if idx < 0 || !ok {
				continue
			}
			got, _ := v.Uint64()
			if idx == trace.RFL && rs.Arch() == "x86_64" {
				// RF: the gdbstub and the log disagree about it.
				got, want.Regs[idx] = got&^(1<<16), want.Regs[idx]&^(1<<16)
			}
			if got != want.Regs[idx] {
				return fmt.Errorf("%w: guest %s at %#x: %s %#x, trace %#x", guest.ErrTraceMismatch, g.Name(), want.PC, n, got, want.Regs[idx])
			}
		}
		return nil
	})
	return pcs, err
}

// TraceSpecs reports whether the trace engine would apply to guests
// launched from specs (Traceable, before any is launched; the QEMU version
// is checked on the pair).
func (e *Engine) TraceSpecs(specs [2]scenario.Guest) bool {
	if !e.cfg.Trace || !e.cfg.Same || e.cfg.Launcher == nil {
		return false
	}
	for _, g := range specs {
		if g.Accel != scenario.AccelTCG || g.Arch != "x86_64" {
			return false
		}
	}
	return true
}
