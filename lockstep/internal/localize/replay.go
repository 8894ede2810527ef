package localize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
	"golang.org/x/sync/errgroup"
)

// Info says how a sync point's divergence was localised, for the report.
type Info struct {
	// Method is what ran: scenario.MethodStep, MethodTrace or MethodReplay
	// ("" when nothing localised by instruction).
	Method string
	// Why says why that method was chosen, and any fallback.
	Why string
	// Depth is the instruction count between the two sync points (side a),
	// when a recording measured it.
	Depth uint64
	// Probes counts the replay stops whose registers (and memory) were compared;
	// Passes the replays (each from boot) the bisection took.
	Probes, Passes int
	// Record is the time spent recording; Replay the time spent replaying
	// and comparing (bisection and the final steps).
	Record, Replay time.Duration
	// Fallback, when set, says why replay was not used or was abandoned.
	Fallback string
	// Declined, when set, says why a recording's depth made auto pick
	// another method.
	Declined string
	// ICount is the instruction count (since boot) of each side where
	// the localised divergence happened.
	ICount [2]uint64
}

// Defaults of Bisector.
const (
	// DefaultSections is the fewest probes a bisection pass spreads over
	// its window; MaxSections the most. Between the two, a pass takes
	// enough for three passes to narrow the depth to the window: a probe
	// (a replay stop and a register read) costs 5-15 ms here, a pass a
	// replay from boot (docs/performance.md).
	DefaultSections = 64
	MaxSections     = 1024
	// DefaultWindow is the window below which bisection stops and the
	// last instructions are single-stepped (about a millisecond each).
	DefaultWindow = 128
)

// Bisector localises by record/replay bisection on the instruction count
// (one binary, TCG on both sides): it records both guests from boot to
// the divergent sync point k, then replays them to ever closer
// instruction counts, comparing registers (and the sync point's compared
// memory) there, and single-steps the last window. Each pass spreads Sections probes over the window the
// previous pass left, from the nearest count known to match; a pass
// replays from boot, so the total replayed is about depth × passes,
// where passes is log_Sections(depth / Window) (3 for 10⁹).
type Bisector struct {
	Launcher guest.Launcher
	Specs    [2]scenario.Guest
	Syms     [2]*symbols.Table
	// Dir holds the recordings (a private directory below it, removed
	// afterwards unless Keep).
	Dir  string
	Keep bool
	// Sections and Window tune the bisection; 0 is the default.
	Sections int
	Window   uint64
	// AfterRecord, when set, is called with the two recording files
	// once they are complete (tests corrupt them here).
	AfterRecord func(files [2]string)
	// Choose, when set, is asked once the recording has measured the
	// depth (instructions between the sync points): a reason not to
	// bisect leaves the localisation to the caller (localize.method auto).
	Choose func(depth uint64) string

	rec recording
}

// rrHealth is the least bound on a liveness question to a recording or
// replaying QEMU.
const rrHealth = 30 * time.Second

// recording is what a recording measured.
type recording struct {
	files [2]string
	// base and end are each side's instruction count at sync points k-1
	// (0 from boot) and k; pcs the program counters at base.
	base, end, pcs [2]uint64
}

// errFallback wraps what makes replay give up and leave the
// localisation to stepping or tracing.
var errFallback = errors.New("replay")

// errDeclined is a recording whose depth made Choose pick another method.
var errDeclined = errors.New("replay declined")

// Unreplayable says why a pair cannot be recorded and replayed, or "".
func Unreplayable(specs [2]scenario.Guest, same bool) string {
	if !same {
		return "the two sides run different builds (replay bisection compares one binary's instruction streams)"
	}
	for i, g := range specs {
		switch {
		case g.Accel == scenario.AccelKVM:
			return fmt.Sprintf("side %s runs under KVM (record/replay needs TCG)", scenario.SideNames[i])
		case g.SMP > 1:
			return fmt.Sprintf("side %s has %d vCPUs (replay bisection compares one vCPU)", scenario.SideNames[i], g.SMP)
		case len(g.Drives) > 0:
			return fmt.Sprintf("side %s has block devices (record/replay needs blkreplay drives, which lockstep does not set up)", scenario.SideNames[i])
		}
	}
	return ""
}

// launch starts a pair recording to or replaying from the recording.
func (r *Bisector) launch(ctx context.Context, mode string, tag string) (guest.Pair, error) {
	var p guest.Pair
	var eg errgroup.Group
	for i := range p {
		eg.Go(func() error {
			cfg := guest.Config{Side: i, Tag: scenario.SideNames[i] + tag, Spec: r.Specs[i], Syms: r.Syms[i],
				RR: qemu.RecordReplay{Mode: mode, File: r.rec.files[i]}}
			g, err := r.Launcher.Launch(ctx, cfg)
			p[i] = g
			if g != nil && g.Timeouts.Health < rrHealth {
				// A recording or replaying QEMU answers QMP only between
				// its vCPU's runs, which icount makes long: on a loaded
				// machine a 10^9-instruction recording left two
				// query-status unanswered for 2 s each.
				g.Timeouts.Health = rrHealth
			}
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		closePair(ctx, p)
		return guest.Pair{}, guest.Infra(err)
	}
	return p, nil
}

// closePair tears p down within the guests' teardown bound.
func closePair(ctx context.Context, p guest.Pair) error {
	if p[0] == nil && p[1] == nil {
		return nil
	}
	to := guest.DefaultTimeouts()
	for _, g := range p {
		if g != nil {
			to = g.Timeouts
		}
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), to.Teardown)
	defer cancel()
	return p.Close(tctx)
}

// Localize localises the divergence between sync points k-1 and k. It
// returns done=false, with the reason in info.Fallback, when replay could
// not settle it (the caller then steps or traces), and an error only when
// the run's context ends (or no scratch directory can be made): whatever
// fails in the recording or replay pairs, QEMUs that die included, is a
// fallback, never an answer.
func (r *Bisector) Localize(ctx context.Context, e *engine.Engine, k int, spec scenario.CompareSpec, info *Info) (divs []compare.Divergence, done bool, err error) {
	if r.Sections < 2 {
		r.Sections = DefaultSections
	}
	if r.Window == 0 {
		r.Window = DefaultWindow
	}
	dir, err := os.MkdirTemp(r.Dir, "replay-")
	if err != nil {
		return nil, false, fmt.Errorf("replay: %w", err)
	}
	if !r.Keep {
		defer os.RemoveAll(dir)
	}
	for i := range r.rec.files {
		r.rec.files[i] = filepath.Join(dir, scenario.SideNames[i]+".rr")
	}
	divs, err = r.localize(ctx, e, k, spec, info)
	if err == nil {
		return divs, true, nil
	}
	if ctx.Err() != nil {
		return nil, false, err
	}
	if errors.Is(err, errDeclined) {
		return nil, false, nil
	}
	// Anything that went wrong inside the replay (a replay error, a count
	// not reached, a replayed QEMU that died) is not an answer: the
	// caller localises another way.
	info.Fallback = err.Error()
	e.Notef("localisation: replay bisection gave no answer (%v); falling back", err)
	return nil, false, nil
}

func (r *Bisector) localize(ctx context.Context, e *engine.Engine, k int, spec scenario.CompareSpec, info *Info) ([]compare.Divergence, error) {
	t0 := time.Now()
	if err := r.record(ctx, e, k); err != nil {
		return nil, err
	}
	info.Record = time.Since(t0)
	info.Method = scenario.MethodReplay
	info.Depth = r.rec.end[0] - r.rec.base[0]
	e.Logf("replay: recorded sync points %d to %d in %s: %d instructions (a), %d (b)", k, k+1,
		info.Record.Round(time.Millisecond), info.Depth, r.rec.end[1]-r.rec.base[1])
	if r.Choose != nil {
		if why := r.Choose(info.Depth); why != "" {
			info.Declined = why
			return nil, errDeclined
		}
	}
	if r.AfterRecord != nil {
		r.AfterRecord(r.rec.files)
	}
	t1 := time.Now()
	defer func() { info.Replay = time.Since(t1) }()
	return r.bisect(ctx, e, k, spec, info)
}

// record records both guests from boot to sync point k and measures the
// instruction counts at k-1 and k.
func (r *Bisector) record(ctx context.Context, e *engine.Engine, k int) (err error) {
	p, err := r.launch(ctx, qemu.RRRecord, "-record")
	if err != nil {
		return fmt.Errorf("%w: recording: %w", errFallback, err)
	}
	defer func() {
		// The recording is complete only once QEMU has ended.
		if cerr := closePair(ctx, p); err == nil && cerr != nil {
			err = fmt.Errorf("%w: recording: %w", errFallback, cerr)
		}
	}()
	counts := func(into *[2]uint64, pcs *[2]uint64) error {
		return p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
			n, err := g.ICount(ctx)
			if err != nil {
				return err
			}
			into[i] = n
			if pcs != nil {
				pcs[i], err = g.PC(ctx)
			}
			return err
		})
	}
	for j := 0; j < k; j++ {
		if _, err := Replay(ctx, e, p, j, [2]map[uint64]string{}); err != nil {
			return fmt.Errorf("%w: recording: %w", errFallback, err)
		}
	}
	// From boot (k = 0) this is count 0 at the reset vector.
	if err := counts(&r.rec.base, &r.rec.pcs); err != nil {
		return fmt.Errorf("%w: recording: %w", errFallback, err)
	}
	if _, err := Replay(ctx, e, p, k, [2]map[uint64]string{}); err != nil {
		return fmt.Errorf("%w: recording: %w", errFallback, err)
	}
	if err := counts(&r.rec.end, nil); err != nil {
		return fmt.Errorf("%w: recording: %w", errFallback, err)
	}
	for i := range p {
		if r.rec.end[i] <= r.rec.base[i] {
			return fmt.Errorf("%w: side %s executed no instructions between the sync points by its count (%d to %d); is -icount in effect?",
				errFallback, scenario.SideNames[i], r.rec.base[i], r.rec.end[i])
		}
	}
	return nil
}

// replayer is a replaying pair and where it stands.
type replayer struct {
	r     *Bisector
	e     *engine.Engine
	k     int
	cspec scenario.CompareSpec
	p     guest.Pair
	names [2][]string
	ropt  compare.RegOptions
	// before are the registers that already differed at sync point k-1:
	// as when stepping, they are not what diverged.
	before map[string]bool
	probes int
	// mem are the memory ranges sync point k compares that each probe
	// compares too; memHit says a probe's memory decided the last pass.
	mem    []memProbe
	memHit bool
}

// memProbe is one memory range a probe compares, minus the bytes that
// already differed at sync point k-1.
type memProbe struct {
	r    scenario.MemoryRange
	name string
	// stale marks the bytes that differed at sync point k-1 or are
	// learned noise (nil: none).
	stale []bool
}

// setupMemory picks the memory ranges of sync point k the probes compare
// (ranges of BulkThreshold and more are left out: a probe reads with 'm'
// packets) and marks the bytes that differ where the pair stands (k-1),
// and those of learned noise, as not compared.
func (rp *replayer) setupMemory(ctx context.Context) error {
	for _, m := range rp.e.Scenario().Sync[rp.k].Compare.Memory {
		if m.Length >= guest.BulkThreshold {
			rp.e.Notef("localisation: replay probes do not compare memory %s (%d bytes, 1 MiB or more)", memName(m), m.Length)
			continue
		}
		mp := memProbe{r: m, name: memName(m)}
		noise, whole := memNoise(rp.e.MemoryNoise(), m)
		if whole {
			continue // learned noise as a whole
		}
		mem, err := rp.read(ctx, m)
		if err != nil {
			return err
		}
		if mem[0].Dump != "" || mem[1].Dump != "" {
			// A symbol of 1 MiB or more (its size gives the length).
			mem[0].Release()
			mem[1].Release()
			rp.e.Notef("localisation: replay probes do not compare memory %s (1 MiB or more)", mp.name)
			continue
		}
		if mem[0].Err != nil || mem[1].Err != nil || len(mem[0].Data) != len(mem[1].Data) {
			rp.e.Notef("localisation: replay probes do not compare memory %s (unreadable at %s: %v / %v)",
				mp.name, engine.PointName(rp.k-1), mem[0].Err, mem[1].Err)
			continue
		}
		for j := range mem[0].Data {
			if mem[0].Data[j] != mem[1].Data[j] || noise[m.Offset+uint64(j)] {
				if mp.stale == nil {
					mp.stale = make([]bool, len(mem[0].Data))
				}
				mp.stale[j] = true
			}
		}
		rp.mem = append(rp.mem, mp)
	}
	return nil
}

// memNoise is the learned noise of range m: the noisy byte offsets
// (from the symbol or address start), or whole when all of it is noise.
func memNoise(noise []scenario.NoiseMemory, m scenario.MemoryRange) (offs map[uint64]bool, whole bool) {
	for _, nm := range noise {
		if nm.HasAddress != m.HasAddress || (m.HasAddress && nm.Address != m.Address) || (!m.HasAddress && nm.Symbol != m.Symbol) {
			continue
		}
		if len(nm.Offsets) == 0 {
			return nil, true
		}
		offs = map[uint64]bool{}
		for _, o := range nm.Offsets {
			offs[o] = true
		}
		return offs, false
	}
	return nil, false
}

// memName names a memory range for notes.
func memName(m scenario.MemoryRange) string {
	if m.HasAddress {
		return fmt.Sprintf("%#x", m.Address+m.Offset)
	}
	if m.Offset > 0 {
		return fmt.Sprintf("%s+%#x", m.Symbol, m.Offset)
	}
	return m.Symbol
}

// read reads one range on both sides where they stand.
func (rp *replayer) read(ctx context.Context, m scenario.MemoryRange) ([2]guest.Memory, error) {
	var mem [2]guest.Memory
	err := rp.p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		mem[i] = g.ReadRange(ctx, m)
		return nil
	})
	if err != nil {
		return mem, fmt.Errorf("%w: %w", errFallback, err)
	}
	return mem, nil
}

// memDiffers reports whether a compared range differs where the pair
// stands, in bytes that matched at sync point k-1.
func (rp *replayer) memDiffers(ctx context.Context) (bool, error) {
	for _, mp := range rp.mem {
		mem, err := rp.read(ctx, mp.r)
		if err != nil {
			return false, err
		}
		if mem[0].Err != nil || mem[1].Err != nil {
			if (mem[0].Err == nil) != (mem[1].Err == nil) {
				return true, nil
			}
			continue
		}
		a, b := mem[0].Data, mem[1].Data
		if len(a) != len(b) {
			return true, nil
		}
		for j := range a {
			if a[j] != b[j] && (mp.stale == nil || !mp.stale[j]) {
				return true, nil
			}
		}
	}
	return false, nil
}

// start relaunches the replaying pair and runs it to sync point k-1,
// checking that it got where the recording was.
func (rp *replayer) start(ctx context.Context) error {
	if err := closePair(ctx, rp.p); err != nil {
		return fmt.Errorf("%w: %w", errFallback, err)
	}
	rp.p = guest.Pair{}
	p, err := rp.r.launch(ctx, qemu.RRReplay, "-replay")
	if err != nil {
		return fmt.Errorf("%w: %w", errFallback, err)
	}
	rp.p = p
	base := rp.r.rec.base
	err = p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		if err := g.RunTo(ctx, base[i]); err != nil {
			return err
		}
		pc, err := g.PC(ctx)
		if err != nil {
			return err
		}
		if pc != rp.r.rec.pcs[i] {
			return fmt.Errorf("%w: side %s replayed to instruction %d stands at pc %#x, where the recording stood at %#x",
				guest.ErrReplay, g.Name(), base[i], pc, rp.r.rec.pcs[i])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errFallback, err)
	}
	if rp.before == nil {
		for i, g := range p {
			n, err := engine.RegNames(g.T.Layout(), rp.spec())
			if err != nil {
				return &guest.ScenarioError{Err: fmt.Errorf("sync point %d: %w", rp.k+1, err)}
			}
			rp.names[i] = n
		}
		rp.ropt = rp.e.RegOptions(p, rp.spec())
		diffs, err := rp.compare(ctx)
		if err != nil {
			return err
		}
		rp.before = map[string]bool{}
		for _, d := range diffs {
			rp.before[d.Name] = true
		}
		if err := rp.setupMemory(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (rp *replayer) spec() scenario.CompareSpec { return rp.cspec }

// compare reads and compares both sides' registers where they stand.
func (rp *replayer) compare(ctx context.Context) ([]compare.RegisterDiff, error) {
	var regs [2]compare.Regs
	err := rp.p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		vals, err := g.Registers(ctx, rp.names[i]...)
		if err != nil {
			return err
		}
		regs[i] = engine.ToRegs(rp.names[i], vals)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFallback, err)
	}
	return compare.Registers(regs[0], regs[1], rp.ropt), nil
}

// differs replays both sides to d instructions after sync point k-1 and
// reports whether registers that matched there differ now, or bytes of
// the sync point's compared memory that matched there.
func (rp *replayer) differs(ctx context.Context, d uint64) (bool, error) {
	base := rp.r.rec.base
	err := rp.p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		return g.RunTo(ctx, base[i]+d)
	})
	if err != nil {
		return false, fmt.Errorf("%w: %w", errFallback, err)
	}
	rp.probes++
	diffs, err := rp.compare(ctx)
	if err != nil {
		return false, err
	}
	for _, df := range diffs {
		if !rp.before[df.Name] && !rp.ropt.IsNoise(df) {
			rp.memHit = false
			return true, nil
		}
	}
	// A value that passed through registers between two probes may
	// live on in memory only.
	hit, err := rp.memDiffers(ctx)
	rp.memHit = hit
	return hit, err
}

// bisect narrows the window between sync points k-1 and k where the
// registers first differ, then single-steps it.
func (r *Bisector) bisect(ctx context.Context, e *engine.Engine, k int, spec scenario.CompareSpec, info *Info) (divs []compare.Divergence, err error) {
	rp := &replayer{r: r, e: e, k: k, cspec: spec}
	defer func() {
		if cerr := closePair(ctx, rp.p); err == nil && cerr != nil {
			err = fmt.Errorf("%w: %w", errFallback, cerr)
		}
		info.Probes = rp.probes
	}()
	depth := min(r.rec.end[0]-r.rec.base[0], r.rec.end[1]-r.rec.base[1])
	lo, hi := uint64(0), depth
	sections := uint64(r.Sections)
	if ratio := depth / r.Window; ratio > sections*sections*sections {
		sections = min(uint64(math.Ceil(math.Cbrt(float64(ratio)))), MaxSections)
	}
	first := true
	for first || hi-lo > r.Window {
		if err := rp.start(ctx); err != nil {
			return nil, err
		}
		info.Passes++
		tp := time.Now()
		seg := max((hi-lo+sections-1)/sections, 1)
		found := false
		for x := lo + seg; ; x += seg {
			x = min(x, hi)
			diff, err := rp.differs(ctx, x)
			if err != nil {
				return nil, err
			}
			if diff {
				hi, found = x, true
				break
			}
			lo = x
			e.Window(k, lo, hi)
			if x == hi {
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: the registers and compared memory agree at every probe up to sync point %d's instruction count (%d instructions after %s): the divergence is in neither",
				errFallback, k+1, depth, engine.PointName(k-1))
		}
		what := "the registers first differ"
		if rp.memHit {
			what = "the compared memory first differs"
		}
		e.Logf("replay: pass %d (%d sections) took %s: %s between %d and %d instructions after %s",
			info.Passes, sections, time.Since(tp).Round(time.Millisecond), what, lo, hi, engine.PointName(k-1))
		e.Notef("localisation: replay pass %d narrowed the window to instructions %d..%d after %s (%d probes so far)",
			info.Passes, lo, hi, engine.PointName(k-1), rp.probes)
		e.Window(k, lo, hi)
		first = false
	}
	// The last window, instruction by instruction.
	byMem := rp.memHit
	if err := rp.start(ctx); err != nil {
		return nil, err
	}
	if lo > 0 {
		if _, err := rp.differs(ctx, lo); err != nil {
			return nil, err
		}
	}
	base := r.rec.base
	ts := time.Now()
	defer func() {
		e.Logf("replay: the last %d instructions took %s", hi-lo, time.Since(ts).Round(time.Millisecond))
	}()
	st, err := e.LockstepSteps(ctx, rp.p, k, spec, int(hi-lo)+64, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: stepping the last %d instructions: %w", errFallback, hi-lo, err)
	}
	if !st.Diverged && !st.Exited[0] && !st.Exited[1] && byMem {
		// Memory differed at hi, but no register did on the way: the
		// value came in without passing through a register (a device,
		// a copy from memory that is not compared). The write
		// watchpoint localiser finds its store.
		return nil, fmt.Errorf("%w: the compared memory first differs between instructions %d and %d after %s, but no register differs on the way there (the store's source is not a register)",
			errFallback, lo, hi, engine.PointName(k-1))
	}
	if !st.Diverged && !st.Exited[0] && !st.Exited[1] {
		return nil, fmt.Errorf("%w: the replay said the registers differ by instruction %d after %s, but stepping from instruction %d found no difference in %d steps (the replay does not repeat the recording)",
			errFallback, hi, engine.PointName(k-1), lo, st.N)
	}
	for i := range info.ICount {
		info.ICount[i] = base[i] + lo + uint64(st.N)
	}
	divs, err = e.StepFindings(ctx, rp.p, k, st, func(n int) string {
		return fmt.Sprintf("localised by replay bisection %d instructions after %s (instruction %d since boot on side a, %d on b)",
			lo+uint64(n), engine.PointName(k-1), base[0]+lo+uint64(n), base[1]+lo+uint64(n))
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFallback, err)
	}
	// Steps count from sync point k-1, as when stepping all the way.
	for i := range divs {
		if divs[i].Step > 0 {
			divs[i].Step += int(lo)
		}
	}
	return divs, nil
}
