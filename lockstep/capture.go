package lockstep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// bulkThreshold is the size from which memory is read with QMP
// pmemsave/memsave instead of 'm' packets (about 2 KiB per round trip).
const bulkThreshold = 1 << 20

// capture is what one side looked like at a sync point.
type capture struct {
	pc        uint64
	regs      compare.Regs
	mem       []memCapture
	backtrace []compare.Frame
}

type memCapture struct {
	name  string
	space string
	addr  uint64
	data  []byte
	err   error
}

// regNames expands a compare spec's register list (names and target.xml
// groups) through a side's layout, minus whole-register ignores.
func regNames(l *rsp.Layout, spec scenario.CompareSpec) ([]string, error) {
	ignored := map[string]bool{}
	for _, ig := range spec.Ignore {
		if !strings.Contains(ig, ".") {
			ignored[strings.ToLower(ig)] = true
		}
	}
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] && !ignored[strings.ToLower(n)] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, want := range spec.Registers {
		if reg, ok := l.Lookup(want); ok {
			add(reg.Name)
			continue
		}
		group := l.Group(want)
		if len(group) == 0 {
			return nil, fmt.Errorf("%q is neither a register nor a register group of %s", want, l.Arch)
		}
		for _, reg := range group {
			add(reg.Name)
		}
	}
	return names, nil
}

// toRegs converts rsp values into compare's big-endian form.
func toRegs(names []string, vals rsp.Registers) compare.Regs {
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

// captureBoth captures both sides concurrently.
func (r *run) captureBoth(ctx context.Context, sp *scenario.SyncPoint) ([2]*capture, error) {
	var caps [2]*capture
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range r.sides {
		g.Go(func() error {
			c, err := r.capture(gctx, s, sp)
			caps[i] = c
			return err
		})
	}
	return caps, g.Wait()
}

// capture reads what the sync point asks for on one side.
func (r *run) capture(ctx context.Context, s *side, sp *scenario.SyncPoint) (*capture, error) {
	c := &capture{}
	pc, err := s.pc(ctx)
	if err != nil {
		return nil, infra(err)
	}
	c.pc = pc
	names, err := regNames(s.rsp.Layout(), sp.Compare)
	if err != nil {
		return nil, &ScenarioError{Err: fmt.Errorf("%s: guest %s: %w", sp.Pos, s.name(), err)}
	}
	if len(names) > 0 {
		vals, err := s.rsp.ReadRegisterSet(ctx, names...)
		if err != nil {
			return nil, infraf("guest %s: read registers: %w", s.name(), err)
		}
		c.regs = toRegs(names, vals)
	}
	for _, m := range sp.Compare.Memory {
		c.mem = append(c.mem, r.readRange(ctx, s, m))
	}
	if sp.Compare.CallPath == scenario.CallPathBacktrace {
		bt, err := r.backtrace(ctx, s)
		if err != nil {
			return nil, err
		}
		c.backtrace = bt
	}
	return c, nil
}

// readRange reads one memory range of the compare spec on side s. A failed
// read is kept in the capture: an unreadable range on one side only is
// itself a finding.
func (r *run) readRange(ctx context.Context, s *side, m scenario.MemoryRange) memCapture {
	mc := memCapture{space: m.Space}
	if mc.space == "" {
		mc.space = scenario.SpaceVirtual
	}
	length := m.Length
	if m.HasAddress {
		mc.name = fmt.Sprintf("%#x", m.Address)
		mc.addr = m.Address + m.Offset
	} else {
		mc.name = m.Symbol
		a, err := s.resolve(m.Symbol)
		if err != nil {
			mc.err = err
			return mc
		}
		mc.addr = a + m.Offset
		if length == 0 {
			size, _ := s.syms.SymbolSize(m.Symbol)
			if size > m.Offset {
				length = size - m.Offset
			}
		}
		if m.Offset > 0 {
			mc.name = fmt.Sprintf("%s+%#x", m.Symbol, m.Offset)
		}
	}
	if length == 0 {
		mc.err = fmt.Errorf("memory %s: zero length (give length:)", mc.name)
		return mc
	}
	if length >= bulkThreshold {
		mc.data, mc.err = r.bulkRead(ctx, s, mc.space, mc.addr, length)
		return mc
	}
	if mc.space == scenario.SpacePhysical {
		mc.data, mc.err = s.rsp.ReadPhysical(ctx, mc.addr, int(length))
	} else {
		mc.data, mc.err = s.rsp.ReadMemory(ctx, mc.addr, int(length))
	}
	return mc
}

// bulkRead reads a large range through QMP pmemsave (physical) or memsave
// (virtual), which QEMU writes at disk speed, instead of 2 KiB 'm' packets.
func (r *run) bulkRead(ctx context.Context, s *side, space string, addr, n uint64) ([]byte, error) {
	f := filepath.Join(r.dir, fmt.Sprintf("%s-mem-%x.bin", scenario.SideNames[s.idx], addr))
	cmd := "memsave"
	if space == scenario.SpacePhysical {
		cmd = "pmemsave"
	}
	args := map[string]any{"val": int64(addr), "size": int64(n), "filename": f}
	if err := s.inst.QMP.Execute(ctx, cmd, args, nil); err != nil {
		return nil, fmt.Errorf("guest %s: %s %#x+%#x: %w", s.name(), cmd, addr, n, err)
	}
	defer os.Remove(f)
	return os.ReadFile(f)
}

// compareAt compares the two captures of sync point k.
func (r *run) compareAt(k int, sp *scenario.SyncPoint, caps [2]*capture) error {
	pcs := [2]compare.Location{r.sides[0].loc(caps[0].pc), r.sides[1].loc(caps[1].pc)}
	sym := r.symbolizers()
	ropt := compare.RegOptions{Ignore: sp.Compare.Ignore, Flags: r.flagBits(), Symbolize: sym}
	if !r.opts.NoNoise {
		ropt.Noise = r.sc.Noise.Registers
	}
	for _, d := range compare.Registers(caps[0].regs, caps[1].regs, ropt) {
		d := d
		r.diverge(k, compare.Divergence{Kind: compare.KindRegister, PC: pcs,
			Summary: compare.RegisterSummary(d), Register: &d, Noise: ropt.IsNoise(d)})
	}
	for j := range caps[0].mem {
		ma, mb := caps[0].mem[j], caps[1].mem[j]
		if ma.err != nil || mb.err != nil {
			if ma.err != nil && mb.err != nil {
				r.note("memory %s unreadable on both sides: %v", ma.name, ma.err)
				continue
			}
			md := &compare.MemoryDiff{Name: ma.name, Space: ma.space, Addr: [2]uint64{ma.addr, mb.addr}}
			msg := fmt.Sprintf("memory %s readable on one side only: a: %v, b: %v", ma.name, errText(ma.err), errText(mb.err))
			r.diverge(k, compare.Divergence{Kind: compare.KindMemory, PC: pcs, Summary: msg, Memory: md})
			continue
		}
		mopt := compare.MemOptions{PtrSize: r.sides[0].arch.PtrSize, BigEndian: r.sides[0].arch.BigEndian}
		if !r.same {
			mopt.Symbolize = sym
		}
		md := compare.Memory(ma.name, ma.space, [2]uint64{ma.addr, mb.addr}, ma.data, mb.data, mopt)
		if md == nil {
			continue
		}
		r.diverge(k, compare.Divergence{Kind: compare.KindMemory, PC: pcs,
			Summary: compare.MemorySummary(md), Memory: md, Noise: r.memoryNoise(sp.Compare.Memory[j], ma.data, mb.data)})
	}
	if sp.Compare.CallPath == scenario.CallPathBacktrace {
		if d := compare.CallPath("backtrace", caps[0].backtrace, caps[1].backtrace); d != nil {
			r.diverge(k, compare.Divergence{Kind: compare.KindCallPath, PC: pcs,
				Summary: compare.CallPathSummary(d), CallPath: d, Noise: r.callPathNoise(d)})
		}
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// symbolizers returns per-side symbolisation for different builds, and
// nothing for one binary, whose addresses compare raw.
func (r *run) symbolizers() [2]compare.SymbolizeFunc {
	if r.same {
		return [2]compare.SymbolizeFunc{}
	}
	return [2]compare.SymbolizeFunc{r.sides[0].symbolize, r.sides[1].symbolize}
}

// callSymbolizers are the symbolisers for comparing call arguments
// between builds. Beyond symbol+offset they map an address in no symbol
// but inside an allocated section (a string literal in .rodata, say) to
// that section alone, so such pointers compare equal between builds: the
// literal moves with the layout, and without DWARF its identity is unknown.
func (r *run) callSymbolizers() [2]compare.SymbolizeFunc {
	if r.same {
		return [2]compare.SymbolizeFunc{}
	}
	var out [2]compare.SymbolizeFunc
	for i, s := range r.sides {
		out[i] = func(addr uint64) (compare.Location, bool) {
			if l, ok := s.symbolize(addr); ok {
				return l, true
			}
			if s.syms == nil {
				return compare.Location{Addr: addr}, false
			}
			if sec, ok := s.syms.Section(addr); ok {
				return compare.Location{Addr: addr, Symbol: "(" + sec + ")"}, true
			}
			return compare.Location{Addr: addr}, false
		}
	}
	return out
}

// flagBits converts the architecture's named flag bits for compare.
func (r *run) flagBits() map[string][]compare.FlagBit {
	out := map[string][]compare.FlagBit{}
	for reg, bits := range r.sides[0].arch.Flags {
		for _, b := range bits {
			out[reg] = append(out[reg], compare.FlagBit{Name: b.Name, Shift: b.Shift, Width: b.Width})
		}
	}
	return out
}

// memoryNoise reports whether every differing byte of range m lies in the
// learned noise for it. Noise offsets count from the symbol (or address)
// start, the range from its own offset within it.
func (r *run) memoryNoise(m scenario.MemoryRange, a, b []byte) bool {
	if r.opts.NoNoise {
		return false
	}
	for _, nm := range r.sc.Noise.Memory {
		if nm.HasAddress != m.HasAddress || (m.HasAddress && nm.Address != m.Address) || (!m.HasAddress && nm.Symbol != m.Symbol) {
			continue
		}
		if len(nm.Offsets) == 0 {
			return true
		}
		allowed := map[uint64]bool{}
		for _, o := range nm.Offsets {
			allowed[o] = true
		}
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] && !allowed[m.Offset+uint64(i)] {
				return false
			}
		}
		return len(a) == len(b)
	}
	return false
}

// callPathNoise reports whether a call-path difference involves only
// functions learned as noise.
func (r *run) callPathNoise(d *compare.CallPathDiff) bool {
	if r.opts.NoNoise || len(r.sc.Noise.CallPath) == 0 {
		return false
	}
	noisy := map[string]bool{}
	for _, n := range r.sc.Noise.CallPath {
		noisy[n] = true
	}
	for _, line := range strings.Split(d.Unified, "\n") {
		if strings.HasPrefix(line, "-") || strings.HasPrefix(line, "+") {
			name := strings.TrimSpace(line[1:])
			if name != "" && !noisy[name] {
				return false
			}
		}
	}
	return true
}
