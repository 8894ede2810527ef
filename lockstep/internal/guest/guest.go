package guest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/arch"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Guest is one guest while a run is in progress: its gdbstub (Target), its
// process (Machine), its symbols and the breakpoints lockstep put in it.
type Guest struct {
	// Side is 0 for a, 1 for b.
	Side int
	// Tag names the guest's files in the run directory ("a", "b-localise").
	Tag  string
	Spec scenario.Guest
	T    Target
	M    Machine
	Syms *symbols.Table
	Arch *arch.Arch
	// BPKind is the breakpoint type used for sync points: software under
	// TCG, hardware under KVM, where a loader can overwrite an int3 (§5).
	BPKind rsp.BreakKind
	// Steps counts single steps taken; LostSteps those QEMU answered
	// without executing anything.
	Steps, LostSteps int
	// Timeouts bound the waits of this guest.
	Timeouts Timeouts
	// Dir is where the guest's scratch files go (bulk memory reads,
	// checkpoint images): the run directory.
	Dir string
	// Socket is the path of the gdbstub's unix socket, "" when the target
	// is not reached through one (the fake).
	Socket string

	bps map[uint64]rsp.BreakKind
	// sstep is the single-step mask found on an attached guest, to put
	// back when detaching; sstepSet whether lockstep changed it.
	sstep    uint64
	sstepSet bool
	exited   bool
	exitCode int
	panicked bool // QEMU's run state said guest-panicked
	lastPC   uint64
	thread   string // the vCPU of the last stop reply ("p01.02")
	live     map[uint64][]bool
	closers  []func() error
	// cumulative names the cumulative query-stats counters
	// ("vcpu.io_exits"), read once; empty when there are none.
	cumulative map[string]bool
	// StatsBase is the counters at the last sync point that read them
	// (nil: none yet, so deltas count from QEMU's start).
	StatsBase compare.Counters
	// linuxLayout is where the kernel keeps the running task, read once
	// (linuxDone) from the symbols; nil when they are no such kernel.
	linuxLayout *linuxLayout
	linuxErr    error
	linuxDone   bool
	// StatsSince names where StatsBase was taken ("boot", "sync 2").
	StatsSince string
}

// New returns a guest for side (0 or 1) over target t and machine m. The
// architecture comes from the target description.
func New(side int, tag string, spec scenario.Guest, t Target, m Machine, syms *symbols.Table, to Timeouts) (*Guest, error) {
	g := &Guest{Side: side, Tag: tag, Spec: spec, T: t, M: m, Syms: syms, Timeouts: to,
		bps: map[uint64]rsp.BreakKind{}, BPKind: rsp.Software}
	if g.Tag == "" {
		g.Tag = scenario.SideNames[side]
	}
	a, err := arch.Lookup(t.Layout().Arch)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", g.Name(), err)
	}
	g.Arch = a
	if spec.Accel == scenario.AccelKVM {
		g.BPKind = rsp.Hardware
	}
	return g, nil
}

// Name returns "a (good)" style labels for messages.
func (g *Guest) Name() string {
	n := scenario.SideNames[g.Side]
	if g.Spec.Label != "" && g.Spec.Label != n {
		return n + " (" + g.Spec.Label + ")"
	}
	return n
}

// OnClose registers f to run when the guest is closed (transcripts).
func (g *Guest) OnClose(f func() error) { g.closers = append(g.closers, f) }

// Close detaches and tears the guest down. It never leaves QEMU running
// that lockstep started; a QEMU lockstep attached to keeps running, with
// lockstep's breakpoints removed and its single-step mask restored.
func (g *Guest) Close(ctx context.Context) error {
	var errs []error
	if g.T != nil && g.IsAttached() {
		errs = append(errs, g.restore(ctx))
	}
	if g.T != nil {
		if err := g.T.Close(); !errors.Is(err, rsp.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if g.M != nil {
		errs = append(errs, g.M.Close(ctx))
	}
	for _, f := range g.closers {
		errs = append(errs, f())
	}
	g.closers = nil
	return errors.Join(errs...)
}

// Symbolize resolves an address through this guest's symbols.
func (g *Guest) Symbolize(addr uint64) (compare.Location, bool) {
	if g.Syms == nil {
		return compare.Location{Addr: addr}, false
	}
	return g.Syms.Symbolize(addr)
}

// Loc is addr as symbol+offset where the symbols know it, with the
// source line and inlined calls where their DWARF has them (file names
// stripped of Spec.SourceStrip). The first Loc loads the DWARF index.
func (g *Guest) Loc(addr uint64) compare.Location { return g.loc(addr, addr) }

// ReturnLoc is Loc for a return address: ret as an offset in the function
// of the call before it (ret-1), with that call's source line, as gdb
// shows a caller's frame; the line after the call would be wrong, and so
// would the next function when the call (to a noreturn function) ends its
// caller.
func (g *Guest) ReturnLoc(ret uint64) compare.Location {
	if ret == 0 {
		return g.Loc(ret)
	}
	// The function is the call's (ret-1): after a call to a noreturn
	// function at the end of its caller, ret is the next function's start.
	l := g.loc(ret-1, ret-1)
	if l.Symbol != "" {
		l.Offset++
	}
	l.Addr = ret
	return l
}

// loc symbolises addr, with the source line of src.
func (g *Guest) loc(addr, src uint64) compare.Location {
	l, _ := g.Symbolize(addr)
	l.Addr = addr
	if g.Syms != nil {
		if file, line, inlined, ok := g.Syms.Source(src); ok {
			l.File, l.Line, l.Inlined = symbols.StripSource(file, g.Spec.SourceStrip), line, inlined
			for i := range l.Inlined {
				l.Inlined[i].File = symbols.StripSource(l.Inlined[i].File, g.Spec.SourceStrip)
			}
		}
	}
	return l
}

// Resolve turns a break expression into an address on this guest.
func (g *Guest) Resolve(expr string) (uint64, error) {
	if g.Syms == nil {
		_, _, addr, isAddr, err := scenario.ParseBreak(expr)
		if err != nil {
			return 0, err
		}
		if !isAddr {
			return 0, fmt.Errorf("guest %s: %q needs symbols, and the side has none (set symbols:)", g.Name(), expr)
		}
		return addr, nil
	}
	return g.Syms.Resolve(expr)
}

// IsFunc reports whether name is a function symbol of this guest.
func (g *Guest) IsFunc(name string) bool {
	if g.Syms == nil {
		return false
	}
	sym, ok := g.Syms.Lookup(name)
	return ok && sym.Func
}

// Insert places a breakpoint unless one is already at addr.
func (g *Guest) Insert(ctx context.Context, kind rsp.BreakKind, addr uint64) error {
	if _, ok := g.bps[addr]; ok {
		return nil
	}
	if err := g.T.InsertBreakpoint(ctx, kind, addr, g.bpSize()); err != nil {
		if kind == rsp.Hardware && errors.Is(err, rsp.ErrRefused) && len(g.bps) > 0 {
			// KVM has as many hardware breakpoints as the CPU has
			// debug registers (x86: 4); what the scenario needs at
			// once is its choice, not a QEMU failure.
			return &ScenarioError{Err: fmt.Errorf("guest %s (%s): a hardware breakpoint at %s was refused with %d already in place: "+
				"the CPU has few debug registers (x86: 4), and the break of the sync point, each pending function injection (its entry, or the return it waits for) "+
				"and any return breakpoint take one each; use fewer function injections, or inject at a sync point: %w",
				g.Name(), g.Spec.Accel, g.Loc(addr), len(g.bps), err)}
		}
		return g.fail(ctx, fmt.Errorf("breakpoint at %s: %w", g.Loc(addr), err))
	}
	g.bps[addr] = kind
	return nil
}

// Remove removes the breakpoint at addr, if lockstep put one there.
func (g *Guest) Remove(ctx context.Context, addr uint64) error {
	kind, ok := g.bps[addr]
	if !ok {
		return nil
	}
	delete(g.bps, addr)
	if err := g.T.RemoveBreakpoint(ctx, kind, addr, g.bpSize()); err != nil {
		return g.fail(ctx, fmt.Errorf("remove breakpoint at %s: %w", g.Loc(addr), err))
	}
	return nil
}

// RemoveAll removes every breakpoint lockstep put in the guest.
func (g *Guest) RemoveAll(ctx context.Context) error {
	var errs []error
	for addr := range g.bps {
		errs = append(errs, g.Remove(ctx, addr))
	}
	return errors.Join(errs...)
}

// Detach removes every breakpoint lockstep put in the guest with Insert
// (watchpoints are inserted, and removed, by their own users) and closes lockstep's gdbstub connection without a 'D' packet,
// which would resume the VM (PROTOCOL.md §2): the guest stays stopped
// where it is, and QEMU's gdbstub, which serves one client at a time,
// accepts the next client (gdb) on the same socket. The process keeps
// running until Close.
func (g *Guest) Detach(ctx context.Context) error {
	err := g.RemoveAll(ctx)
	if cerr := g.T.Close(); cerr != nil && !errors.Is(cerr, rsp.ErrClosed) {
		err = errors.Join(err, fmt.Errorf("guest %s: close gdbstub: %w", g.Name(), cerr))
	}
	return err
}

// Breakpoints returns the breakpoints in place, by address.
func (g *Guest) Breakpoints() map[uint64]rsp.BreakKind { return maps.Clone(g.bps) }

// HasBreakpoint reports whether lockstep has a breakpoint at addr.
func (g *Guest) HasBreakpoint(addr uint64) bool { _, ok := g.bps[addr]; return ok }

// bpSize is the "kind" argument of Z packets: 1 on x86, 4 on aarch64.
func (g *Guest) bpSize() int {
	if g.Arch != nil && g.Arch.BreakKind > 0 {
		return g.Arch.BreakKind
	}
	return 1
}

// PC reads the program counter.
func (g *Guest) PC(ctx context.Context) (uint64, error) {
	pc, err := g.T.PC(ctx)
	if err != nil {
		return 0, g.fail(ctx, fmt.Errorf("read pc: %w", err))
	}
	g.lastPC = pc
	return pc, nil
}

// LastPC is the last program counter read from the guest (0 if none): where
// a guest that has since exited was last seen.
func (g *Guest) LastPC() uint64 { return g.lastPC }

// Registers reads the named registers.
func (g *Guest) Registers(ctx context.Context, names ...string) (rsp.Registers, error) {
	v, err := g.T.ReadRegisterSet(ctx, names...)
	if err != nil {
		return nil, g.fail(ctx, fmt.Errorf("read registers: %w", err))
	}
	// Stepping reads the PC with the other registers: keep where the
	// guest was last seen, as PC does.
	if pc, ok := v[g.pcName()]; ok && len(pc.Bytes) > 0 {
		if u, ok := pc.Uint64(); ok {
			g.lastPC = u
		}
	}
	return v, nil
}

// pcName is the name of the program counter register ("" if unknown).
func (g *Guest) pcName() string {
	if g.Arch == nil {
		return ""
	}
	return g.Arch.PC
}

// Exited reports whether the guest has ended (a guest behaviour: QEMU
// exited normally, not by a crash).
func (g *Guest) Exited() bool { return g.exited }

// Panicked reports whether a guest that has ended panicked: QEMU said so
// (GUEST_PANICKED, a SHUTDOWN for guest-panic, or the run state
// guest-panicked). On s390x that is a disabled-wait PSW other than QEMU's
// quiesce address; QEMU still exits with status 0, so without this a
// panic reads as a normal exit.
func (g *Guest) Panicked() bool {
	if !g.exited {
		return false
	}
	if g.panicked {
		return true
	}
	if g.M == nil {
		return false
	}
	reason, panicked := g.M.Shutdown()
	return panicked || reason == "guest-panic"
}

// Ended says how a guest that has ended ended, as QEMU reported it:
// "panicked" (Panicked), "reset" (a guest reset, which -no-reboot turns
// into QEMU's exit: a triple fault, a reboot, PSCI SYSTEM_RESET), else
// "exited". QEMU's exit status is 0 for all three unless the guest chose
// one (isa-debug-exit), so the status alone cannot tell them apart.
func (g *Guest) Ended() string {
	if g.Panicked() {
		return "panicked"
	}
	if g.exited && g.M != nil {
		if reason, _ := g.M.Shutdown(); reason == "guest-reset" {
			return "reset"
		}
	}
	return "exited"
}

// ExitStatus returns the guest's exit status as the process reports it,
// falling back to the gdbstub's W code; nil while it runs.
func (g *Guest) ExitStatus() *int {
	if g.M != nil {
		if pe, ok := g.M.ExitStatus(); ok && pe.Signal == 0 {
			return &pe.Code
		}
	}
	if g.exited {
		c := g.exitCode
		return &c
	}
	return nil
}

// SerialTail returns the last lines of the guest's serial log.
func (g *Guest) SerialTail(lines int) string {
	if g.M == nil {
		return ""
	}
	b, err := g.M.Serial()
	if err != nil {
		return ""
	}
	return lastLines(string(b), lines)
}

func lastLines(s string, n int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}

// Word decodes a pointer-sized word in the guest's byte order.
func (g *Guest) Word(b []byte) uint64 {
	var u uint64
	if g.Arch.BigEndian {
		for _, c := range b {
			u = u<<8 | uint64(c)
		}
		return u
	}
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	return u
}
