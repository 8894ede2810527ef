package lockstep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/arch"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// side is one guest while a run is in progress: its QEMU process, its
// gdbstub connection and its symbols.
type side struct {
	idx int
	// tag names the side's files in the run directory ("a", "b-localise").
	tag   string
	guest scenario.Guest
	inst  *qemu.Instance
	rsp   *rsp.Client
	syms  *symbols.Table
	arch  *arch.Arch
	// bpKind is the breakpoint type used for sync points: software under
	// TCG, hardware under KVM, where a loader can overwrite an int3 (§5).
	bpKind rsp.BreakKind
	// bps are the breakpoints currently inserted, by address.
	bps map[uint64]rsp.BreakKind
	// exited is set once the guest has ended (W reply or process exit).
	exited   bool
	exitCode int
	// steps counts single steps taken on this side.
	steps int
	// thread is the vCPU of the last stop reply ("p01.02").
	thread string
	// lostSteps counts steps QEMU answered without executing anything.
	lostSteps  int
	transcript io.Closer
	traceNoted bool
	// traceLog, when set before launch, is the path QEMU writes its
	// per-instruction CPU log to (-d cpu,nochain, one insn per TB): a FIFO
	// read by the trace engine.
	traceLog string
	// traceArgs are extra QEMU arguments for tracing (e.g. -dfilter).
	traceArgs []string
	// live caches liveArgs by function address.
	live map[uint64][]bool
	// lastCalls are the calls recorded by the last replayTo.
	lastCalls []compare.Call
}

// name returns "a (good)" style labels for messages.
func (s *side) name() string {
	n := scenario.SideNames[s.idx]
	if s.guest.Label != "" && s.guest.Label != n {
		return n + " (" + s.guest.Label + ")"
	}
	return n
}

// spec converts the scenario's guest into a launcher spec.
func guestSpec(g scenario.Guest, det scenario.Determinism) qemu.Spec {
	spec := qemu.Spec{
		Arch: g.Arch, Binary: g.QEMU, Machine: g.Machine, CPU: g.CPU, Accel: g.Accel,
		Memory: g.Memory, SMP: g.SMP, Kernel: g.Kernel, Initrd: g.Initrd, Append: g.Append,
		BIOS: g.BIOS, Args: g.Args, RTC: det.RTC,
	}
	if g.Accel != scenario.AccelKVM {
		spec.Icount = det.Icount
	}
	for _, d := range g.Drives {
		spec.Drives = append(spec.Drives, qemu.Drive{File: d.File, Format: d.Format, If: d.If, Snapshot: d.Snapshot})
	}
	return spec
}

// launch starts the guest's QEMU and attaches to its gdbstub.
func (s *side) launch(ctx context.Context, runDir string, opts Options, det scenario.Determinism) error {
	spec := guestSpec(s.guest, det)
	if s.traceLog != "" {
		spec.Trace = s.traceLog
		spec.Args = append(append([]string(nil), spec.Args...), s.traceArgs...)
	}
	name := s.tag
	if name == "" {
		name = scenario.SideNames[s.idx]
	}
	var qmpLog io.Writer
	if opts.Keep {
		f, err := os.Create(filepath.Join(runDir, name+"-qmp.log"))
		if err != nil {
			return fmt.Errorf("guest %s: %w", s.name(), err)
		}
		s.transcript = f
		qmpLog = f
	}
	inst, err := qemu.Start(ctx, spec, qemu.Options{
		Dir: runDir, Name: name, Keep: opts.Keep, Logger: opts.Logger, QMPTranscript: qmpLog,
	})
	if err != nil {
		return fmt.Errorf("guest %s: %w", s.name(), err)
	}
	s.inst = inst
	if opts.Keep {
		cmd := "#!/bin/sh\n# QEMU command line of guest " + s.name() + "\n" + inst.CommandLine + "\n"
		if err := os.WriteFile(filepath.Join(runDir, name+"-cmdline.sh"), []byte(cmd), 0o755); err != nil {
			return fmt.Errorf("guest %s: %w", s.name(), err)
		}
	}
	var ropts []rsp.Option
	if opts.Keep {
		f, err := os.Create(filepath.Join(runDir, name+"-rsp.log"))
		if err != nil {
			return fmt.Errorf("guest %s: %w", s.name(), err)
		}
		ropts = append(ropts, rsp.WithTranscript(f))
		prev := s.transcript
		s.transcript = multiCloser{prev, f}
	}
	c, err := rsp.Dial(ctx, "unix", inst.GDBSocket, ropts...)
	if err != nil {
		return fmt.Errorf("guest %s: attach gdbstub: %w", s.name(), err)
	}
	s.rsp = c
	a, err := arch.Lookup(c.Layout().Arch)
	if err != nil {
		return fmt.Errorf("guest %s: %w", s.name(), err)
	}
	s.arch = a
	s.bpKind = rsp.Software
	if s.guest.Accel == scenario.AccelKVM {
		s.bpKind = rsp.Hardware
	}
	return nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// close detaches and tears the guest down. It never leaves QEMU running.
func (s *side) close(ctx context.Context) error {
	var errs []error
	if s.rsp != nil {
		errs = append(errs, ignoreClosed(s.rsp.Close()))
	}
	if s.inst != nil {
		errs = append(errs, s.inst.Close(ctx))
	}
	if s.transcript != nil {
		errs = append(errs, s.transcript.Close())
	}
	return errors.Join(errs...)
}

func ignoreClosed(err error) error {
	if errors.Is(err, rsp.ErrClosed) {
		return nil
	}
	return err
}

// symbolize resolves an address through this side's symbols.
func (s *side) symbolize(addr uint64) (compare.Location, bool) {
	if s.syms == nil {
		return compare.Location{Addr: addr}, false
	}
	return s.syms.Symbolize(addr)
}

func (s *side) loc(addr uint64) compare.Location {
	l, _ := s.symbolize(addr)
	l.Addr = addr
	return l
}

// resolve turns a break expression into an address on this side.
func (s *side) resolve(expr string) (uint64, error) {
	if s.syms == nil {
		_, _, addr, isAddr, err := scenario.ParseBreak(expr)
		if err != nil {
			return 0, err
		}
		if !isAddr {
			return 0, fmt.Errorf("guest %s: %q needs symbols, and the side has none (set symbols:)", s.name(), expr)
		}
		return addr, nil
	}
	return s.syms.Resolve(expr)
}

// insert places a breakpoint unless one is already at addr.
func (s *side) insert(ctx context.Context, kind rsp.BreakKind, addr uint64) error {
	if _, ok := s.bps[addr]; ok {
		return nil
	}
	if err := s.rsp.InsertBreakpoint(ctx, kind, addr, s.bpSize()); err != nil {
		return fmt.Errorf("guest %s: breakpoint at %s: %w", s.name(), s.loc(addr), err)
	}
	s.bps[addr] = kind
	return nil
}

func (s *side) remove(ctx context.Context, addr uint64) error {
	kind, ok := s.bps[addr]
	if !ok {
		return nil
	}
	delete(s.bps, addr)
	if err := s.rsp.RemoveBreakpoint(ctx, kind, addr, s.bpSize()); err != nil {
		return fmt.Errorf("guest %s: remove breakpoint at %s: %w", s.name(), s.loc(addr), err)
	}
	return nil
}

func (s *side) removeAll(ctx context.Context) error {
	var errs []error
	for addr := range s.bps {
		errs = append(errs, s.remove(ctx, addr))
	}
	return errors.Join(errs...)
}

// bpSize is the "kind" argument of Z packets: 1 on x86, 4 on aarch64.
func (s *side) bpSize() int {
	if s.arch != nil && s.arch.Name == "aarch64" {
		return 4
	}
	return 1
}

// pc reads the program counter.
func (s *side) pc(ctx context.Context) (uint64, error) {
	pc, err := s.rsp.PC(ctx)
	if err != nil {
		return 0, fmt.Errorf("guest %s: read pc: %w", s.name(), err)
	}
	return pc, nil
}

// step single-steps one instruction. On a guest with several vCPUs it
// steps only the vCPU that last stopped ('vCont;s:thread'): a plain 's'
// steps that vCPU but lets the others run, which no lockstep comparison
// survives.
func (s *side) step(ctx context.Context) (rsp.StopReply, error) {
	var st rsp.StopReply
	var err error
	if s.guest.SMP > 1 && s.thread != "" {
		st, err = s.rsp.StepThread(ctx, s.thread)
	} else {
		st, err = s.rsp.Step(ctx)
	}
	s.noteThread(st)
	s.steps++
	if err == nil && (st.Kind == 'W' || st.Kind == 'X') {
		s.exited, s.exitCode = true, st.ExitCode
	}
	return st, err
}

// cont resumes the guest until the next stop. If the guest sits on one of
// our breakpoints it first steps off it with the breakpoint removed, as gdb
// does, so the same breakpoint does not fire again at once.
func (s *side) cont(ctx context.Context) (rsp.StopReply, error) {
	pc, err := s.pc(ctx)
	if err != nil {
		return rsp.StopReply{}, err
	}
	if kind, ok := s.bps[pc]; ok {
		if err := s.rsp.RemoveBreakpoint(ctx, kind, pc, s.bpSize()); err != nil {
			return rsp.StopReply{}, fmt.Errorf("guest %s: step off breakpoint: %w", s.name(), err)
		}
		// A step can stop without moving (QEMU reports a pending event
		// first); step again, a bounded number of times, or the same
		// breakpoint would be counted twice.
		var st rsp.StopReply
		for try := 0; try < 4; try++ {
			st, err = s.step(ctx)
			if err != nil {
				return st, fmt.Errorf("guest %s: step off breakpoint: %w", s.name(), err)
			}
			if s.exited {
				return st, nil
			}
			npc, err := s.pc(ctx)
			if err != nil {
				return st, err
			}
			if npc != pc {
				break
			}
		}
		if err := s.rsp.InsertBreakpoint(ctx, kind, pc, s.bpSize()); err != nil {
			return st, fmt.Errorf("guest %s: re-insert breakpoint: %w", s.name(), err)
		}
		npc, err := s.pc(ctx)
		if err != nil {
			return st, err
		}
		if _, hit := s.bps[npc]; hit {
			// The step landed on another breakpoint: that is a stop.
			return st, nil
		}
	}
	st, err := s.rsp.Continue(ctx)
	s.noteThread(st)
	if err == nil && (st.Kind == 'W' || st.Kind == 'X') {
		s.exited, s.exitCode = true, st.ExitCode
	}
	return st, err
}

// noteThread remembers the vCPU a stop reply names.
func (s *side) noteThread(st rsp.StopReply) {
	if st.Kind == 'T' && st.Thread != "" {
		s.thread = st.Thread
	}
}

// exitStatus returns the guest's exit status as the process reports it,
// falling back to the gdbstub's W code.
func (s *side) exitStatus() *int {
	if s.inst != nil {
		if code, ok := s.inst.ExitCode(); ok {
			return &code
		}
	}
	if s.exited {
		c := s.exitCode
		return &c
	}
	return nil
}

// serialTail returns the last lines of the guest's serial log.
func (s *side) serialTail(lines int) string {
	if s.inst == nil {
		return ""
	}
	b, err := s.inst.Serial()
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// isFunc reports whether name is a function symbol on this side.
func (s *side) isFunc(name string) bool {
	if s.syms == nil {
		return false
	}
	sym, ok := s.syms.Lookup(name)
	return ok && sym.Func
}
