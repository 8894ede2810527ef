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
// 0's current_task at the same, still paused stop. Both must name the
// same comm and pid.
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
			ours, sock := ourTask(t, kernel, vmlinux, hit)
			comm, pid := gdbTask(t, gdb, vmlinux, sock)
			t.Logf("ours: %s; gdb: comm %q pid %d", ours, comm, pid)
			if ours.CPU != 0 || ours.Comm != comm || ours.PID != pid {
				t.Errorf("we name %s, gdb reads comm %q pid %d on cpu 0", ours, comm, pid)
			}
			if ours.Context == "" {
				t.Errorf("no irq context read from __preempt_count")
			}
		})
	}
}

// ourTask boots kernel, stops at the hit-th do_one_initcall and returns
// the task guest.Task names there, and the gdbstub socket of the QEMU,
// left paused with the socket free for gdb.
func ourTask(t *testing.T, kernel, vmlinux string, hit int) (*compare.Task, string) {
	t.Helper()
	spec := scenario.Guest{Arch: "x86_64", Machine: "pc", CPU: "qemu64", Accel: scenario.AccelTCG, Memory: "512M",
		Kernel: kernel, Initrd: os.Getenv("LINUX_INITRD"), Append: "console=ttyS0 nokaslr panic=-1"}
	inst := qemutest.Start(t, qemu.Spec{Arch: "x86_64", Machine: spec.Machine, CPU: spec.CPU, Accel: "tcg", Memory: spec.Memory,
		Kernel: kernel, Initrd: spec.Initrd, Append: spec.Append, Args: []string{"-no-reboot"}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	c, err := rsp.Dial(ctx, "unix", inst.GDBSocket)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
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
	t.Logf("boot to hit %d: %s", hit, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	task, err := g.Task(ctx)
	if err != nil || task == nil {
		t.Fatalf("Task: %v, %v", task, err)
	}
	t.Logf("first Task (DWARF types read): %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if _, err := g.Task(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("second Task (cached layout, 5 memory reads): %s", time.Since(start).Round(time.Microsecond))
	if err := g.Remove(ctx, addr); err != nil {
		t.Fatal(err)
	}
	// Close without detaching: QEMU stays paused where we left it.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return task, inst.GDBSocket
}

var gdbTaskLine = regexp.MustCompile(`(?m)^comm=(.*) pid=(-?\d+)$`)

// gdbTask attaches gdb to the paused QEMU and reads CPU 0's current task.
func gdbTask(t *testing.T, gdb, vmlinux, sock string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const cur = `((struct task_struct *)*(unsigned long *)((char *)&current_task + __per_cpu_offset[0]))`
	out, err := exec.CommandContext(ctx, gdb, "-batch", "-nx", "-ex", "set pagination off",
		"-ex", "file "+vmlinux, "-ex", "target remote "+sock,
		"-ex", `printf "comm=%s pid=%d\n", `+cur+`->comm, `+cur+`->pid`, "-ex", "disconnect").CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	m := gdbTaskLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no comm=... pid=... line in gdb's output:\n%s", out)
	}
	pid, err := strconv.Atoi(string(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	return string(m[1]), pid
}
