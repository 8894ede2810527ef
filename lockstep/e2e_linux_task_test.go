//go:build e2e_linux

package lockstep_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestLinuxE2ETaskGDB stops each Debian kernel at the
// LINUX_INITCALL_HIT-th do_one_initcall, names the running task as a
// sync point's report header does (guest.Task: the per-CPU current_task
// through __per_cpu_offset[0], comm and pid at the task_struct offsets of
// the vmlinux's DWARF), then lets real gdb with the same vmlinux read CPU
// 0's current_task at the same, still paused stop: both must name the same
// comm and pid. gdb then continues to the timer interrupt handler
// (__sysvec_apic_timer_interrupt, entered after irq_enter) and reads the
// task and CPU 0's __preempt_count there; lockstep, reconnected at that
// stop, must agree and call it hardirq context. Last, lockstep goes on to
// run_timer_softirq, which must be softirq context.
func TestLinuxE2ETaskGDB(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	gdb := qemutest.RequireGDB(t)
	root := qemutest.Root(t)
	linuxEnv(t, root)
	hit, err := strconv.Atoi(os.Getenv("LINUX_INITCALL_HIT"))
	if err != nil || hit < 1 {
		t.Fatalf("LINUX_INITCALL_HIT=%q: want a positive number", os.Getenv("LINUX_INITCALL_HIT"))
	}
	for _, side := range []string{"A", "B"} {
		t.Run(os.Getenv("LINUX_"+side+"_VERSION"), func(t *testing.T) {
			kernel, vmlinux := os.Getenv("LINUX_"+side+"_KERNEL"), os.Getenv("LINUX_"+side+"_VMLINUX")
			ours, sock, syms := ourTask(t, kernel, vmlinux, hit)
			theirs := gdbTask(t, gdb, vmlinux, sock)
			t.Logf("ours: %s; gdb: %+v", ours, theirs)
			if ours.CPU != 0 || ours.Comm != theirs[0].comm || ours.PID != theirs[0].pid {
				t.Errorf("at do_one_initcall we name %s, gdb reads comm %q pid %d on cpu 0", ours, theirs[0].comm, theirs[0].pid)
			}
			if ours.Context != compare.ContextTask {
				t.Errorf("do_one_initcall in %q context, want task", ours.Context)
			}
			irq, soft := ourIRQTasks(t, sock, syms)
			t.Logf("at __sysvec_apic_timer_interrupt: ours %s (preempt count %#x); gdb comm %q pid %d preempt count %#x",
				irq, irq.PreemptCount, theirs[1].comm, theirs[1].pid, theirs[1].preempt)
			if irq.Comm != theirs[1].comm || irq.PID != theirs[1].pid || irq.PreemptCount != theirs[1].preempt&0x7fffffff {
				t.Errorf("at the timer interrupt we read %s (preempt count %#x), gdb %+v", irq, irq.PreemptCount, theirs[1])
			}
			if irq.Context != compare.ContextHardIRQ {
				t.Errorf("timer interrupt in %q context, want hardirq", irq.Context)
			}
			t.Logf("at run_timer_softirq: %s (preempt count %#x)", soft, soft.PreemptCount)
			if soft.Context != compare.ContextSoftIRQ {
				t.Errorf("run_timer_softirq in %q context, want softirq", soft.Context)
			}
		})
	}
}

// initcallStop is a Debian kernel stopped at its hit-th do_one_initcall
// (the breakpoint still in), in a QEMU owned by the test.
type initcallStop struct {
	g    *guest.Guest
	c    *rsp.Client
	sock string // the gdbstub socket
	syms *symbols.Table
	addr uint64 // do_one_initcall
}

// bootToInitcall boots kernel under TCG and stops it at the hit-th
// do_one_initcall.
func bootToInitcall(t *testing.T, ctx context.Context, kernel, vmlinux string, hit int) initcallStop {
	t.Helper()
	spec := scenario.Guest{Arch: "x86_64", Machine: "pc", CPU: "qemu64", Accel: scenario.AccelTCG, Memory: "512M",
		Kernel: kernel, Initrd: os.Getenv("LINUX_INITRD"), Append: "console=ttyS0 nokaslr panic=-1"}
	inst := qemutest.Start(t, qemu.Spec{Arch: "x86_64", Machine: spec.Machine, CPU: spec.CPU, Accel: "tcg", Memory: spec.Memory,
		Kernel: kernel, Initrd: spec.Initrd, Append: spec.Append, Args: []string{"-no-reboot"}})
	c, err := rsp.Dial(ctx, "unix", inst.GDBSocket)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := symbols.Load(vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	g, err := guest.New(0, "a", spec, c, nil, syms, guest.Timeouts{})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := g.Resolve("do_one_initcall")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Insert(ctx, rsp.Software, addr); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < hit; {
		st, err := g.Cont(ctx)
		if err != nil {
			t.Fatalf("continue to hit %d: %v", n+1, err)
		}
		if st.Exited() {
			t.Fatalf("guest exited before hit %d", n+1)
		}
		if pc, err := g.PC(ctx); err == nil && pc == addr {
			n++
		}
	}
	return initcallStop{g: g, c: c, sock: inst.GDBSocket, syms: syms, addr: addr}
}

// release removes the breakpoint and closes the gdbstub connection
// without detaching: QEMU stays paused where it stopped, for gdb.
func (s initcallStop) release(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := s.g.Remove(ctx, s.addr); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Close(); err != nil {
		t.Fatal(err)
	}
}

// ourTask boots kernel, stops at the hit-th do_one_initcall and returns
// the task guest.Task names there, and the gdbstub socket of the QEMU,
// left paused with the socket free for gdb.
func ourTask(t *testing.T, kernel, vmlinux string, hit int) (*compare.Task, string, *symbols.Table) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	s := bootToInitcall(t, ctx, kernel, vmlinux, hit)
	t.Logf("boot to hit %d: %s", hit, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	task, err := s.g.Task(ctx)
	if err != nil || task == nil {
		t.Fatalf("Task: %v, %v", task, err)
	}
	t.Logf("first Task (DWARF types read): %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if _, err := s.g.Task(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("second Task (cached layout, 5 memory reads): %s", time.Since(start).Round(time.Microsecond))
	s.release(t, ctx)
	return task, s.sock, s.syms
}

// ourIRQTasks reconnects to the QEMU gdb left paused in the timer
// interrupt and names the task there, then continues to
// run_timer_softirq and names it there.
func ourIRQTasks(t *testing.T, sock string, syms *symbols.Table) (irq, soft *compare.Task) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c, err := rsp.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	spec := scenario.Guest{Arch: "x86_64", Accel: scenario.AccelTCG}
	g, err := guest.New(0, "a", spec, c, nil, syms, guest.Timeouts{})
	if err != nil {
		t.Fatal(err)
	}
	if irq, err = g.Task(ctx); err != nil || irq == nil {
		t.Fatalf("Task in the timer interrupt: %v, %v", irq, err)
	}
	addr, err := g.Resolve("run_timer_softirq")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Insert(ctx, rsp.Software, addr); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := g.Cont(ctx)
		if err != nil || st.Exited() {
			t.Fatalf("continue to run_timer_softirq: %v %+v", err, st)
		}
		if pc, err := g.PC(ctx); err == nil && pc == addr {
			break
		}
	}
	if soft, err = g.Task(ctx); err != nil || soft == nil {
		t.Fatalf("Task in run_timer_softirq: %v, %v", soft, err)
	}
	return irq, soft
}

var gdbTaskLine = regexp.MustCompile(`(?m)^comm=(.*) pid=(-?\d+) preempt=(0x[0-9a-f]+|0)$`)

// gdbSeen is what gdb read at one stop.
type gdbSeen struct {
	comm    string
	pid     int
	preempt uint32
}

// gdbTask attaches gdb to the paused QEMU, reads CPU 0's current task and
// preempt count, continues to the timer interrupt handler, reads them
// again there and disconnects, leaving QEMU paused in the handler.
func gdbTask(t *testing.T, gdb, vmlinux, sock string) [2]gdbSeen {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	const base = `__per_cpu_offset[0]`
	const cur = `((struct task_struct *)*(unsigned long *)((char *)&current_task + ` + base + `))`
	const show = `printf "comm=%s pid=%d preempt=%#x\n", ` + cur + `->comm, ` + cur + `->pid, *(unsigned int *)((char *)&__preempt_count + ` + base + `)`
	out, err := exec.CommandContext(ctx, gdb, "-batch", "-nx", "-ex", "set pagination off",
		"-ex", "file "+vmlinux, "-ex", "target remote "+sock, "-ex", show,
		"-ex", "break __sysvec_apic_timer_interrupt", "-ex", "continue", "-ex", show,
		"-ex", "delete", "-ex", "disconnect").CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	ms := gdbTaskLine.FindAllSubmatch(out, -1)
	if len(ms) != 2 {
		t.Fatalf("want two comm=... pid=... preempt=... lines in gdb's output:\n%s", out)
	}
	var seen [2]gdbSeen
	for i, m := range ms {
		pid, err := strconv.Atoi(string(m[2]))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := strconv.ParseUint(string(m[3]), 0, 32)
		if err != nil {
			t.Fatal(err)
		}
		seen[i] = gdbSeen{comm: string(m[1]), pid: pid, preempt: uint32(pc)}
	}
	return seen
}
