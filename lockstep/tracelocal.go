package lockstep

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/trace"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// traceIdle bounds each read of a trace pipe: SeaBIOS runs unlogged
// before the kernel's first logged instruction, and the machine is shared.
const traceIdle = 30 * time.Second

// errTraceMismatch is returned when the gdbstub pair, driven to the
// instruction the trace found, is not in the state the trace logged.
var errTraceMismatch = errors.New("gdbstub state does not match the trace")

// traceable reports whether the trace engine can localise: one binary on
// both sides, both under TCG, x86_64, and QEMU 7.2 or later (older
// versions are refused when the version is known).
func (r *run) traceable() bool {
	if traceOff || !r.same {
		return false
	}
	for _, s := range r.sides {
		if s.guest.Accel != scenario.AccelTCG || s.guest.Arch != "x86_64" {
			return false
		}
		if s.inst != nil && !versionAtLeast(s.inst.Version, 7, 2) {
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

// localizeTrace localises the first divergent instruction between sync
// points k-1 and k with QEMU's per-instruction CPU log instead of gdbstub
// single steps. pair is a fresh gdbstub pair already at sync point k-1.
//
// It launches a second, traced pair whose logs stream through FIFOs, walks
// both logs through sync points 0..k-1, compares them instruction by
// instruction, and then drives pair to the divergent instruction with a
// breakpoint and its hit count, steps it once and records the divergence
// exactly as gdbstub stepping would. It reports whether it settled the
// localisation: a divergence, or a note that there is none within
// localize.max_steps or before sync point k. On false the caller steps
// through the gdbstub instead (with a note when err is non-nil).
func (r *run) localizeTrace(ctx context.Context, pair [2]*side, k int) (bool, error) {
	sp := &r.sc.Sync[k]
	spec := scenario.CompareSpec{Registers: append([]string{"general"}, sp.Compare.Registers...), Ignore: sp.Compare.Ignore}
	// Stop at the sync point that noticed the divergence, as stepping does.
	addrK, err := pair[0].resolve(sp.Break)
	if err != nil {
		return false, err
	}
	arrivals := 0
	stop := func(i uint64, s *trace.State) bool {
		if i > 0 && s.PC == addrK {
			arrivals++
		}
		return arrivals >= sp.Hit
	}
	return r.traceFrom(ctx, pair, k, k-1, spec, r.sc.Localize.MaxSteps, stop,
		fmt.Sprintf("localised by trace %%d instructions after sync point %d", k))
}

// traceFrom compares the two guests with the trace engine from sync point
// from (pair sits there) for at most max instructions, or until stop says
// so, and records the first divergent instruction at sync point k, with
// where (a format taking the instruction count) as its summary prefix.
func (r *run) traceFrom(ctx context.Context, pair [2]*side, k, from int, spec scenario.CompareSpec, max int, stop func(uint64, *trace.State) bool, where string) (bool, error) {
	t0 := time.Now()
	topt, ropt, names, err := r.traceOptions(pair, k, spec)
	if err != nil {
		return false, err
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tp, readers, cleanup, err := r.launchTraced(tctx)
	defer cleanup()
	if err != nil {
		return false, err
	}
	w := [2]*trace.Walker{trace.NewWalker(trace.NewParser(readers[0])), trace.NewWalker(trace.NewParser(readers[1]))}

	// Walk both logs through sync points 0..from: hit counts are counted
	// from the previous sync point, as runTo counts them.
	var skipped uint64
	for j := 0; j <= from; j++ {
		spj := &r.sc.Sync[j]
		var g errgroup.Group
		var n [2]uint64
		for i, s := range tp {
			g.Go(func() error {
				addr, err := s.resolve(spj.Break)
				if err != nil {
					return err
				}
				n[i], err = w[i].Seek(tctx, addr, spj.Hit)
				if err != nil {
					return fmt.Errorf("guest %s: sync point %d in the trace: %w", s.name(), j+1, err)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return false, err
		}
		skipped += n[0]
	}

	topt.Stop = stop
	topt.Max = uint64(max) + 1 // state 0 is sync point from itself
	tc := time.Now()
	d, err := trace.CompareFrom(tctx, w[0], w[1], topt)
	if err != nil {
		return false, fmt.Errorf("trace compare: %w", err)
	}
	elapsed := time.Since(tc)
	r.logf("trace engine: %s after skipping %d states to sync point %d; compared %d instructions in %s (%.0f/s), %d+%d repeated states collapsed",
		d.String(), skipped, from+1, d.Index, elapsed.Round(time.Millisecond), float64(d.Index)/max1(elapsed.Seconds()), d.Dups[0], d.Dups[1])
	if traceObserver != nil {
		traceObserver(traceStats{compared: d.Index, skipped: skipped, compare: elapsed})
	}
	// The traced guests are frozen on their full pipes: end them now, so
	// the gdbstub pair has the CPUs to itself.
	cancel()
	cleanup()

	switch d.Outcome {
	case trace.SameUntilMax:
		if from == k {
			// A step window that matched: nothing to say.
			return true, nil
		}
		r.note("localisation: no divergence within localize.max_steps (%d instructions) after sync point %d (trace engine)", max, from+1)
		return true, nil
	case trace.SameUntilStop:
		r.note("localisation: the registers matched at every one of the %d instructions from sync point %d to %d (trace engine); the divergence is in memory or call path only", d.Index-1, from+1, k+1)
		return true, nil
	case trace.SameUntilEOF, trace.EndedA, trace.EndedB:
		// An exit is recorded from the gdbstub pair; let stepping get there.
		r.logf("trace engine: %s; stepping through the gdbstub to record it", d.String())
		return false, nil
	}
	if d.Index == 0 {
		return false, fmt.Errorf("trace: the guests already differ at sync point %d", from+1)
	}
	prev, err := r.reachTraced(ctx, pair, d, names)
	if err != nil {
		return false, err
	}
	// Execute the divergent instruction on both sides and compare, as
	// lockstepSteps does after each step.
	var regs [2]compare.Regs
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range pair {
		g.Go(func() error {
			reply, err := s.step(gctx)
			if err != nil {
				return infraf("guest %s: step the divergent instruction: %w", s.name(), err)
			}
			if reply.Kind == 'W' || reply.Kind == 'X' || s.exited {
				return fmt.Errorf("guest %s exited on the divergent instruction", s.name())
			}
			vals, err := s.rsp.ReadRegisterSet(gctx, names[i]...)
			if err != nil {
				return infraf("guest %s: registers after the divergent instruction: %w", s.name(), err)
			}
			regs[i] = toRegs(names[i], vals)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	diffs := compare.Registers(regs[0], regs[1], ropt)
	real := false
	for _, df := range diffs {
		if !ropt.IsNoise(df) {
			real = true
		}
	}
	if !real {
		return false, fmt.Errorf("%w: no register differs after the instruction at %#x (trace: %s)", errTraceMismatch, prev[0], d.String())
	}
	if err := r.instructionDivergence(ctx, pair, k, int(d.Index), prev, diffs, ropt, fmt.Sprintf(where, d.Index)); err != nil {
		return false, err
	}
	r.logf("trace engine: done in %s", time.Since(t0).Round(time.Millisecond))
	return true, nil
}

// traceOff turns the trace engine off (tests and benchmarks that measure
// the gdbstub path).
var traceOff bool

// traceObserver, when set (by benchmarks, before a run), receives the
// figures of each trace comparison.
var traceObserver func(traceStats)

// traceStats are the figures of one trace comparison.
type traceStats struct {
	compared, skipped uint64
	compare           time.Duration
}

func max1(x float64) float64 {
	if x <= 0 {
		return 1e-9
	}
	return x
}

// traceOptions maps the compared gdbstub registers and the ignore and
// noise rules onto the trace's register indices and flag mask. It returns
// the gdbstub register names per side (with the PC) for the confirmation
// after the step.
func (r *run) traceOptions(pair [2]*side, k int, spec scenario.CompareSpec) (trace.Options, compare.RegOptions, [2][]string, error) {
	var topt trace.Options
	var names [2][]string
	for i, s := range pair {
		n, err := regNames(s.rsp.Layout(), spec)
		if err != nil {
			return topt, compare.RegOptions{}, names, &ScenarioError{Err: fmt.Errorf("sync point %d: %w", k+1, err)}
		}
		names[i] = withPC(n, s.arch.PC)
	}
	ropt := compare.RegOptions{Ignore: spec.Ignore, Flags: r.flagBits()}
	rules := append([]string(nil), spec.Ignore...)
	if !r.opts.NoNoise {
		ropt.Noise = r.sc.Noise.Registers
		rules = append(rules, r.sc.Noise.Registers...)
	}
	whole, mask := traceIgnore(rules, ropt.Flags)
	var unseen []string
	seen := map[int]bool{}
	for _, n := range names[0] {
		idx := trace.RegIndex(strings.ToLower(n))
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
		r.logf("trace engine: registers %v are not in the cpu log; the gdbstub compares them at the divergent instruction only", unseen)
	}
	topt.FlagMask = mask
	return topt, ropt, names, nil
}

// traceIgnore turns ignore rules ("eflags", "eflags.RF") into trace
// register indices to leave out and a mask of flag bits to ignore.
func traceIgnore(rules []string, flags map[string][]compare.FlagBit) (map[int]bool, uint64) {
	whole := map[int]bool{}
	var mask uint64
	for _, rule := range rules {
		reg, bit, hasBit := strings.Cut(strings.ToLower(strings.TrimSpace(rule)), ".")
		idx := trace.RegIndex(reg)
		if idx < 0 {
			continue
		}
		if !hasBit {
			whole[idx] = true
			continue
		}
		if idx != trace.RFL {
			// Bits of other registers are not compared by mask: leave
			// the whole register to the gdbstub confirmation.
			whole[idx] = true
			continue
		}
		found := false
		for name, bits := range flags {
			if trace.RegIndex(strings.ToLower(name)) != trace.RFL {
				continue
			}
			for _, b := range bits {
				if strings.EqualFold(b.Name, bit) {
					w := b.Width
					if w <= 0 {
						w = 1
					}
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
	for _, p := range []string{g.Symbols, g.Kernel} {
		if p == "" {
			continue
		}
		f, err := elf.Open(p)
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

// launchTraced starts two traced sides, their logs streaming through
// FIFOs, and resumes them. QEMU opens its -D log before it creates the QMP
// socket and blocks there until a reader opens the FIFO, so each reader is
// opened concurrently with the launch. cleanup (always non-nil, safe to
// call twice) kills the traced guests and removes the FIFOs.
func (r *run) launchTraced(ctx context.Context) ([2]*side, [2]io.ReadCloser, func(), error) {
	var tp [2]*side
	var readers [2]io.ReadCloser
	dir, err := os.MkdirTemp(r.dir, "trace-")
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
		for _, s := range tp {
			if s != nil {
				s.close(dead)
			}
		}
		os.RemoveAll(dir)
	}
	var fifos [2]*trace.FIFO
	for i := range tp {
		f, err := trace.OpenFIFO(ctx, dir, scenario.SideNames[i]+".fifo")
		if err != nil {
			return tp, readers, cleanup, err
		}
		f.Idle = traceIdle
		fifos[i] = f
		src := r.sides[i]
		tp[i] = &side{idx: i, tag: scenario.SideNames[i] + "-trace", guest: src.guest, syms: src.syms,
			bps: map[uint64]rsp.BreakKind{}, traceLog: f.Path(), traceArgs: trace.FilterArgs(kernelRanges(src.guest)...)}
	}
	var g errgroup.Group
	for i, s := range tp {
		g.Go(func() error {
			if err := s.launch(ctx, r.dir, r.opts, r.sc.Determinism); err != nil {
				fifos[i].Abort()
				return infra(fmt.Errorf("trace engine: %w", err))
			}
			return nil
		})
		g.Go(func() error {
			rd, err := fifos[i].Open()
			if err != nil {
				return fmt.Errorf("trace engine: guest %s: %w", s.name(), err)
			}
			readers[i] = rd
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return tp, readers, cleanup, err
	}
	for _, s := range tp {
		// From here on the gdbstub is not touched again: a vCPU blocked on
		// a full pipe cannot answer a stop request.
		if err := s.rsp.Resume(ctx); err != nil {
			return tp, readers, cleanup, infraf("trace engine: guest %s: resume: %w", s.name(), err)
		}
	}
	return tp, readers, cleanup, nil
}

// reachTraced drives the gdbstub pair, at sync point k-1, to the state
// before the divergent instruction d.Prev: a breakpoint at its PC, hit
// d.PrevHits+1 times counting from sync point k-1 itself. It checks the
// registers there against the trace and returns the PCs.
func (r *run) reachTraced(ctx context.Context, pair [2]*side, d trace.Divergence, names [2][]string) ([2]uint64, error) {
	var pcs [2]uint64
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range pair {
		g.Go(func() error {
			want := d.Prev[i]
			pcs[i] = want.PC
			pc, err := s.pc(gctx)
			if err != nil {
				return infra(err)
			}
			stops := d.PrevHits[i] + 1
			if pc == want.PC {
				stops-- // sync point k-1 itself is the first hit
			}
			if stops > 0 {
				if err := s.insert(gctx, s.bpKind, want.PC); err != nil {
					return infra(err)
				}
				for n := uint64(0); n < stops; n++ {
					st, err := s.cont(gctx)
					if err != nil {
						return infraf("guest %s: run to the divergent instruction (stop %d of %d): %w", s.name(), n+1, stops, err)
					}
					if s.exited || st.Kind == 'W' || st.Kind == 'X' {
						return fmt.Errorf("%w: guest %s exited before the divergent instruction", errTraceMismatch, s.name())
					}
					if pc, err = s.pc(gctx); err != nil {
						return infra(err)
					}
					if pc != want.PC {
						return fmt.Errorf("%w: guest %s stopped at %s, not at %#x", errTraceMismatch, s.name(), s.loc(pc), want.PC)
					}
				}
				if err := s.remove(gctx, want.PC); err != nil {
					return infra(err)
				}
			}
			vals, err := s.rsp.ReadRegisterSet(gctx, names[i]...)
			if err != nil {
				return infraf("guest %s: registers before the divergent instruction: %w", s.name(), err)
			}
			for _, n := range names[i] {
				idx := trace.RegIndex(strings.ToLower(n))
				v, ok := vals[n]
				if idx < 0 || !ok {
					continue
				}
				got, _ := v.Uint64()
				if idx == trace.RFL {
					got, want.Regs[idx] = got&^(1<<16), want.Regs[idx]&^(1<<16)
				}
				if got != want.Regs[idx] {
					return fmt.Errorf("%w: guest %s at %#x: %s %#x, trace %#x", errTraceMismatch, s.name(), want.PC, n, got, want.Regs[idx])
				}
			}
			return nil
		})
	}
	return pcs, g.Wait()
}
