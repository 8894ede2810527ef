package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Point is what happened at one sync point.
type Point struct {
	Arrivals [2]Arrival
	PC       [2]compare.Location
	// Divergences found at the point, in the order found (noise included,
	// marked).
	Divergences []compare.Divergence
	// Uncompared names what the point asked to compare and neither side
	// could provide (a memory range unreadable on both sides): the point
	// was not fully compared.
	Uncompared []string
	// Captured is what each side looked like at the point, when both
	// reached it and were captured; zero otherwise.
	Captured [2]compare.SideState
	// Stats are the accelerator statistics compared at the point (the
	// counters that moved most since the previous point), nil when it
	// compares none.
	Stats *compare.StatsTable
}

// Reached reports whether both sides got to the sync point.
func (pt *Point) Reached() bool { return pt.Arrivals[0].Reached() && pt.Arrivals[1].Reached() }

// Point drives p to sync point k, then captures and compares both sides
// there. It does not step windows or localise.
func (e *Engine) Point(ctx context.Context, p guest.Pair, k int) (Point, error) {
	var pt Point
	sp := &e.sc.Sync[k]
	e.Progress(PhaseRunning, k)
	var trace [2]map[uint64]string
	for i, g := range p {
		trace[i] = e.TraceAddrs(g, k)
		if k == 0 && len(e.sc.Trace.Functions) > 0 && g.Spec.Accel == scenario.AccelKVM {
			e.note("guest %s: trace.functions starts after sync point 1 under kvm (software breakpoints need the code in place)", g.Name())
		}
	}
	arr, err := e.Reach(ctx, p, k, trace)
	if err != nil {
		return pt, err
	}
	pt.Arrivals = arr
	for i, g := range p {
		pt.PC[i] = g.Loc(arr[i].PC)
	}
	if len(e.sc.Trace.Functions) > 0 {
		if d := compare.CallPath("trace", callFrames(arr[0].Calls), callFrames(arr[1].Calls)); d != nil {
			pt.Divergences = append(pt.Divergences, e.At(k, compare.Divergence{Kind: compare.KindCallPath, PC: pt.PC,
				Summary: compare.CallPathSummary(d), CallPath: d, Noise: e.callPathNoise(d)}))
		}
	}
	if !pt.Reached() {
		if d, ok := e.arrivalDivergence(p, k, arr, pt.PC); ok {
			pt.Divergences = append(pt.Divergences, d)
		}
		return pt, nil
	}
	sp = e.notWhereInjected(p, k, sp, arr)
	var caps [2]*capture
	err = p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		c, err := e.capture(ctx, g, sp)
		caps[i] = c
		return err
	})
	defer func() {
		for _, c := range caps {
			for j := range c.memOrNil() {
				c.mem[j].Release()
			}
		}
	}()
	if err != nil {
		return pt, err
	}
	for i, g := range p {
		pt.Captured[i] = caps[i].state(g)
	}
	e.Progress(PhaseComparing, k)
	divs, uncompared := e.compareAt(p, k, sp, caps)
	pt.Divergences = append(pt.Divergences, divs...)
	pt.Uncompared = uncompared
	st, sdivs, sunc, err := e.stats(ctx, p, k, sp)
	if err != nil {
		return pt, err
	}
	pt.Stats = st
	for _, d := range sdivs {
		d.PC = pt.PC
		pt.Divergences = append(pt.Divergences, d)
	}
	pt.Uncompared = append(pt.Uncompared, sunc...)
	return pt, nil
}

// arrivalDivergence describes sync point k that at most one side reached.
// Both sides ending the same way without reaching it is no divergence
// (the guests agree; the point was not compared, which the caller
// records), and ok is false.
func (e *Engine) arrivalDivergence(p guest.Pair, k int, arr [2]Arrival, pcs [2]compare.Location) (compare.Divergence, bool) {
	var ad compare.ArrivalDiff
	for i, g := range p {
		ad.Reached[i] = arr[i].Reached()
		ad.State[i] = string(arr[i].State)
		ad.Detail[i] = arr[i].Detail
		if arr[i].State == Exited {
			ad.ExitCode[i] = g.ExitStatus()
		}
	}
	// Two guests that both still run at the bound agree, wherever the
	// interrupt caught each; stops and exits must match exactly.
	if !arr[0].Reached() && !arr[1].Reached() && arr[0].State == arr[1].State &&
		(arr[0].State == Timeout || arr[0].Detail == arr[1].Detail) {
		return compare.Divergence{}, false
	}
	parts := make([]string, 2)
	for i, g := range p {
		parts[i] = g.Name() + " " + arr[i].Detail
	}
	return e.At(k, compare.Divergence{Kind: compare.KindArrival, PC: pcs, Summary: strings.Join(parts, "; "), Arrival: &ad}), true
}

// capture is what one side looked like at a sync point.
type capture struct {
	pc        uint64
	regs      compare.Regs
	mem       []guest.Memory
	backtrace []compare.Frame
	note      string
	task      *compare.Task
}

// capture reads what the sync point asks for on one side.
func (e *Engine) capture(ctx context.Context, g *guest.Guest, sp *scenario.SyncPoint) (*capture, error) {
	c := &capture{}
	pc, err := g.PC(ctx)
	if err != nil {
		return nil, err
	}
	c.pc = pc
	names, err := RegNames(g.T.Layout(), sp.Compare)
	if err != nil {
		return nil, &guest.ScenarioError{Err: fmt.Errorf("%s: guest %s: %w", sp.Pos, g.Name(), err)}
	}
	if len(names) > 0 {
		vals, err := g.Registers(ctx, names...)
		if err != nil {
			return nil, err
		}
		c.regs = ToRegs(names, vals)
	}
	for _, m := range sp.Compare.Memory {
		c.mem = append(c.mem, g.ReadRange(ctx, m))
	}
	// The backtrace is taken even when the point does not compare call
	// paths: the report shows where each side was (a few memory reads).
	c.backtrace, c.note, err = g.Backtrace(ctx)
	if err != nil {
		return nil, err
	}
	// The running task (Linux kernels with DWARF types): what the report
	// header names. Not finding it is a note, never a failure.
	c.task, err = g.Task(ctx)
	switch {
	case errors.Is(err, guest.ErrNoTaskTypes):
		e.note("guest %s: the running task is not shown: %v (give the vmlinux with DWARF types as symbols:)", g.Name(), err)
	case err != nil:
		e.note("guest %s at %s: the running task could not be read: %v", g.Name(), sp.Break, err)
	}
	return c, nil
}

// compareAt compares the two captures of sync point k.
func (e *Engine) compareAt(p guest.Pair, k int, sp *scenario.SyncPoint, caps [2]*capture) (divs []compare.Divergence, uncompared []string) {
	pcs := locs(p, [2]uint64{caps[0].pc, caps[1].pc})
	add := func(d compare.Divergence) {
		d.PC = pcs
		divs = append(divs, e.At(k, d))
	}
	for _, n := range registerSets(p, caps) {
		e.note("%s", n)
	}
	ropt := e.regOptions(p, sp.Compare)
	ropt.Symbolize = e.symbolizers(p)
	regDiffs, info := e.abiFilter(p, sp, pcs, [2]compareRegs{compareRegs(caps[0].regs), compareRegs(caps[1].regs)},
		compare.Registers(caps[0].regs, caps[1].regs, ropt))
	if len(info) > 0 {
		e.rec.Note(informational(k, sp.Break, sp.At == scenario.AtReturn, info))
	}
	for _, d := range regDiffs {
		add(compare.Divergence{Kind: compare.KindRegister, Summary: compare.RegisterSummary(d), Register: &d, Noise: ropt.IsNoise(d)})
	}
	for j := range caps[0].mem {
		ma, mb := caps[0].mem[j], caps[1].mem[j]
		switch {
		case ma.Err != nil && mb.Err != nil:
			e.note("sync point %d: memory %s unreadable on both sides, not compared: %v", k+1, ma.Name, ma.Err)
			uncompared = append(uncompared, "memory "+ma.Name)
			continue
		case ma.Err != nil || mb.Err != nil:
			md := &compare.MemoryDiff{Name: ma.Name, Space: ma.Space, Addr: [2]uint64{ma.Addr, mb.Addr}}
			add(compare.Divergence{Kind: compare.KindMemory, Memory: md,
				Summary: fmt.Sprintf("memory %s readable on one side only: a: %v, b: %v", ma.Name, errText(ma.Err), errText(mb.Err))})
			continue
		}
		mopt := compare.MemOptions{PtrSize: p[0].Arch.PtrSize, BigEndian: p[0].Arch.BigEndian}
		if !e.cfg.Same {
			mopt.Symbolize = ropt.Symbolize
		}
		md, noise, err := e.compareMemory(sp.Compare.Memory[j], &ma, &mb, mopt)
		if err != nil {
			e.note("sync point %d: memory %s not compared: %v", k+1, ma.Name, err)
			uncompared = append(uncompared, "memory "+ma.Name)
			continue
		}
		if md == nil {
			continue
		}
		add(compare.Divergence{Kind: compare.KindMemory, Summary: compare.MemorySummary(md), Memory: md, Noise: noise})
	}
	if sp.Compare.CallPath == scenario.CallPathBacktrace {
		for _, c := range caps {
			if c.note != "" {
				e.note("%s", c.note)
			}
		}
		if d := compare.CallPath("backtrace", caps[0].backtrace, caps[1].backtrace); d != nil {
			add(compare.Divergence{Kind: compare.KindCallPath, Summary: compare.CallPathSummary(d), CallPath: d, Noise: e.callPathNoise(d)})
		}
	}
	return divs, uncompared
}

// registerSets takes out of both captures the registers that only one
// side's target description has (two CPU models of one architecture:
// aarch64 max has SVE's z, p, ffr and vg where cortex-a57 has v0-v31) and
// those neither side could read (the gdbstub refused them), and says so,
// once per set: notes that do not name the sync point, so a run records
// each once. A register both sides have but only one could read stays, and
// is reported as unavailable on that side.
func registerSets(p guest.Pair, caps [2]*capture) []string {
	if p[0].Arch != nil && p[0].Arch.Name == "aarch64" {
		sveViews(caps)
	}
	var only [2][]string
	var unreadable []string
	has := [2]map[string]bool{{}, {}}
	for i, c := range caps {
		for _, n := range c.regs.Names {
			has[i][n] = true
		}
	}
	drop := map[string]bool{}
	for i, c := range caps {
		for _, n := range c.regs.Names {
			switch _, read := c.regs.Values[n]; {
			case !has[1-i][n]:
				only[i] = append(only[i], n)
				drop[n] = true
			case i == 0 && !read:
				if _, read1 := caps[1].regs.Values[n]; !read1 {
					unreadable = append(unreadable, n)
					drop[n] = true
				}
			}
		}
	}
	if len(drop) == 0 {
		return nil
	}
	for _, c := range caps {
		c.regs.Names = slices.DeleteFunc(slices.Clone(c.regs.Names), func(n string) bool { return drop[n] })
	}
	var notes []string
	for i, names := range only {
		if len(names) > 0 {
			notes = append(notes, fmt.Sprintf("registers only side %s has: %s: the two CPU models' register sets differ; not compared",
				p[i].Name(), nameList(names)))
		}
	}
	if len(unreadable) > 0 {
		notes = append(notes, fmt.Sprintf("registers neither side's gdbstub would read: %s; not compared", nameList(unreadable)))
	}
	return notes
}

// sveViews lets an aarch64 model without SVE (cortex-a57: v0-v31) be
// compared with one with SVE (max: z0-z31, where QEMU's target description
// has no v registers): on the SVE side, vN is added as the low 128 bits of
// zN, the architectural alias, so vN is compared on both sides. zN stays,
// as a register of the SVE model only (its upper bits have no counterpart).
func sveViews(caps [2]*capture) {
	for i, c := range caps {
		other := caps[1-i]
		has := map[string]bool{}
		for _, n := range c.regs.Names {
			has[n] = true
		}
		for _, n := range other.regs.Names {
			if len(n) < 2 || n[0] != 'v' || has[n] {
				continue
			}
			num := n[1:]
			if _, err := strconv.Atoi(num); err != nil || !has["z"+num] {
				continue
			}
			c.regs.Names = append(c.regs.Names, n)
			if z, ok := c.regs.Values["z"+num]; ok && len(z) >= 16 {
				c.regs.Values[n] = slices.Clone(z[len(z)-16:]) // big-endian: the low 128 bits are last
			}
		}
	}
}

// nameList lists names, the first 8 of a longer list followed by how many
// more there are.
func nameList(names []string) string {
	const show = 8
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more (%d)", strings.Join(names[:show], ", "), len(names)-show, len(names))
}

// compareMemory compares one range as read on both sides, a chunk at a
// time (a bulk range is read from its two dump files, never whole), and
// says whether its differences are all learned noise.
func (e *Engine) compareMemory(m scenario.MemoryRange, ma, mb *guest.Memory, opt compare.MemOptions) (*compare.MemoryDiff, bool, error) {
	sa, ca, err := ma.Source()
	if err != nil {
		return nil, false, err
	}
	defer ca.Close()
	sb, cb, err := mb.Source()
	if err != nil {
		return nil, false, err
	}
	defer cb.Close()
	md, err := compare.MemoryFrom(ma.Name, ma.Space, [2]uint64{ma.Addr, mb.Addr}, sa, sb, opt)
	if err != nil || md == nil {
		return nil, false, err
	}
	noise, err := e.memoryNoise(m, sa, sb)
	return md, noise, err
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// canonicalGroups are the register groups every architecture has, if
// perhaps empty on a CPU model (no vector registers on riscv64 without V).
var canonicalGroups = map[string]bool{"general": true, "float": true, "vector": true, "system": true}

// RegNames expands a compare spec's register list (names and target.xml
// groups) through a layout, minus whole-register ignores.
func RegNames(l *rsp.Layout, spec scenario.CompareSpec) ([]string, error) {
	ignored := map[string]bool{}
	for _, ig := range spec.Ignore {
		if !strings.Contains(ig, ".") {
			ignored[strings.ToLower(ig)] = true
		}
	}
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) && !ignored[strings.ToLower(n)] {
			names = append(names, n)
		}
	}
	for _, want := range spec.Registers {
		if reg, ok := l.Lookup(want); ok {
			add(reg.Name)
			continue
		}
		group := l.Group(want)
		if len(group) == 0 && !canonicalGroups[strings.ToLower(want)] {
			return nil, fmt.Errorf("%q is neither a register nor a register group of %s", want, l.Arch)
		}
		for _, reg := range group {
			add(reg.Name)
		}
	}
	return names, nil
}

// ToRegs converts rsp values into compare's big-endian form.
func ToRegs(names []string, vals rsp.Registers) compare.Regs {
	out := compare.Regs{Names: names, Values: make(map[string][]byte, len(names))}
	for _, n := range names {
		v, ok := vals[n]
		if !ok {
			continue
		}
		b := slices.Clone(v.Bytes)
		if !v.BigEndian {
			slices.Reverse(b)
		}
		out.Values[n] = b
	}
	return out
}

// memOrNil returns c's memory ranges; a capture that failed has none.
func (c *capture) memOrNil() []guest.Memory {
	if c == nil {
		return nil
	}
	return c.mem
}
