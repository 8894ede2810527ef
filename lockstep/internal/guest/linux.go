package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
)

// ErrNoTaskTypes means the guest's symbols are a Linux kernel without the
// DWARF types that locate the running task (task_struct's comm and pid).
var ErrNoTaskTypes = errors.New("no DWARF types for task_struct")

// Preempt count bits (include/linux/preempt.h, the same since 5.x).
const (
	softirqOffset = 0x00000100
	hardirqMask   = 0x000f0000
	nmiMask       = 0x00f00000
	// x86 keeps PREEMPT_NEED_RESCHED inverted in the top bit.
	needResched = 0x80000000
)

// linuxLayout is where a kernel keeps the running task, from its symbols
// and DWARF.
type linuxLayout struct {
	// current and preempt are per-CPU variables: offsets from a CPU's
	// per-CPU base (x86_64: current_task and __preempt_count in 6.1;
	// pcpu_hot.current_task and pcpu_hot.preempt_count from 6.2).
	current, preempt uint64
	hasPreempt       bool
	// perCPUOffset is the address of __per_cpu_offset[], each CPU's base.
	perCPUOffset uint64
	comm, pid    symbols.Member
}

// linux reads the layout once; nil with a nil error when the symbols are
// no Linux kernel that keeps current_task per CPU.
func (g *Guest) linux() (*linuxLayout, error) {
	if g.linuxDone {
		return g.linuxLayout, g.linuxErr
	}
	g.linuxDone = true
	g.linuxLayout, g.linuxErr = readLinuxLayout(g.Syms)
	return g.linuxLayout, g.linuxErr
}

func readLinuxLayout(t *symbols.Table) (*linuxLayout, error) {
	if t == nil {
		return nil, nil
	}
	pco, ok := t.Lookup("__per_cpu_offset")
	if !ok {
		return nil, nil
	}
	l := &linuxLayout{perCPUOffset: pco.Addr}
	if cur, ok := t.Lookup("current_task"); ok {
		l.current = cur.Addr
		if pc, ok := t.Lookup("__preempt_count"); ok {
			l.preempt, l.hasPreempt = pc.Addr, true
		}
	} else if hot, ok := t.Lookup("pcpu_hot"); ok {
		m, err := t.StructMembers("pcpu_hot", "current_task", "preempt_count")
		if err != nil {
			return nil, taskTypesErr(err)
		}
		l.current = hot.Addr + m["current_task"].Offset
		l.preempt, l.hasPreempt = hot.Addr+m["preempt_count"].Offset, true
	} else {
		return nil, nil
	}
	m, err := t.StructMembers("task_struct", "comm", "pid")
	if err != nil {
		return nil, taskTypesErr(err)
	}
	l.comm, l.pid = m["comm"], m["pid"]
	if l.comm.Size == 0 || l.comm.Size > 64 || l.pid.Size != 4 {
		return nil, fmt.Errorf("task_struct.comm is %d bytes and pid %d: %w", l.comm.Size, l.pid.Size, ErrNoTaskTypes)
	}
	return l, nil
}

func taskTypesErr(err error) error {
	if errors.Is(err, symbols.ErrNoDWARF) || errors.Is(err, symbols.ErrNoType) {
		return fmt.Errorf("%w: %w", ErrNoTaskTypes, err)
	}
	return err
}

// CPU is the vCPU of the last stop (0-based): the stop reply's thread id
// less one ("p01.02" is vCPU 1); 0 before any stop.
func (g *Guest) CPU() int {
	tid := g.thread
	if i := strings.LastIndexByte(tid, '.'); i >= 0 {
		tid = tid[i+1:]
	}
	n, err := strconv.ParseUint(tid, 16, 31)
	if err != nil || n == 0 {
		return 0
	}
	return int(n) - 1
}

// Task names the Linux task the stopped vCPU runs: its comm and pid from
// the per-CPU current task pointer (the CPU's base read from
// __per_cpu_offset[cpu], as gdb would), and whether it is in interrupt
// context from the CPU's preempt count. It returns nil and no error when
// the symbols are not such a kernel, and an error matching
// ErrNoTaskTypes when they lack the DWARF types.
func (g *Guest) Task(ctx context.Context) (*compare.Task, error) {
	l, err := g.linux()
	if l == nil || err != nil {
		return nil, err
	}
	cpu := g.CPU()
	order := g.Syms.ByteOrder()
	word := func(addr uint64, n int) (uint64, error) {
		b, err := g.T.ReadMemory(ctx, addr, n)
		if err != nil {
			return 0, err
		}
		if len(b) != n {
			return 0, fmt.Errorf("short read at %#x", addr)
		}
		if n == 4 {
			return uint64(order.Uint32(b)), nil
		}
		return order.Uint64(b), nil
	}
	base, err := word(l.perCPUOffset+8*uint64(cpu), 8)
	if err != nil {
		return nil, fmt.Errorf("__per_cpu_offset[%d]: %w", cpu, err)
	}
	ts, err := word(base+l.current, 8)
	if err != nil {
		return nil, fmt.Errorf("current task of cpu %d: %w", cpu, err)
	}
	if ts == 0 {
		return nil, fmt.Errorf("current task of cpu %d is NULL", cpu)
	}
	t := &compare.Task{CPU: cpu, Addr: ts}
	comm, err := g.T.ReadMemory(ctx, ts+l.comm.Offset, int(l.comm.Size))
	if err != nil {
		return nil, fmt.Errorf("task %#x comm: %w", ts, err)
	}
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	t.Comm = string(comm)
	pid, err := word(ts+l.pid.Offset, 4)
	if err != nil {
		return nil, fmt.Errorf("task %#x pid: %w", ts, err)
	}
	t.PID = int(int32(uint32(pid)))
	if l.hasPreempt {
		if pc, err := word(base+l.preempt, 4); err == nil {
			t.PreemptCount = uint32(pc) &^ needResched
			t.Context = irqContext(t.PreemptCount)
		}
	}
	return t, nil
}

// irqContext names the context a preempt count says the CPU is in.
func irqContext(pc uint32) string {
	switch {
	case pc&nmiMask != 0:
		return compare.ContextNMI
	case pc&hardirqMask != 0:
		return compare.ContextHardIRQ
	case pc&softirqOffset != 0:
		return compare.ContextSoftIRQ
	}
	return compare.ContextTask
}
