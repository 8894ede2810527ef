package fake_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// taskELF builds lockstep/symbols/testdata/task.c (a fake task_struct and
// the 6.1 per-CPU symbols) with extra gcc flags.
func taskELF(t *testing.T, extra ...string) *symbols.Table {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc not installed (Debian package gcc), needed to build task.c: %v", err)
	}
	out := filepath.Join(t.TempDir(), "task.elf")
	args := append([]string{"-O0", "-nostdlib", "-static", "-no-pie"}, extra...)
	if b, err := exec.Command(gcc, append(args, "../../symbols/testdata/task.c", "-o", out)...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	tab, err := symbols.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func symAddr(t *testing.T, tab *symbols.Table, name string) uint64 {
	t.Helper()
	s, ok := tab.Lookup(name)
	if !ok {
		t.Fatalf("no symbol %s", name)
	}
	return s.Addr
}

// TestTaskFromPerCPU lays out a kernel's per-CPU area in a fake guest's
// memory: CPU 0's base in __per_cpu_offset[0], there current_task
// pointing at a task_struct with comm and pid at the DWARF's offsets, and
// a preempt count serving a softirq (the x86 need-resched bit set).
// guest.Task must name that task; without DWARF types it must say so.
func TestTaskFromPerCPU(t *testing.T) {
	tab := taskELF(t, "-g")
	m, err := tab.StructMembers("task_struct", "comm", "pid")
	if err != nil {
		t.Fatal(err)
	}
	const base, task = 0x200000, 0x300000
	le := binary.LittleEndian
	mem := map[uint64][]byte{
		symAddr(t, tab, "__per_cpu_offset"):       le.AppendUint64(nil, base),
		base + symAddr(t, tab, "current_task"):    le.AppendUint64(nil, task),
		base + symAddr(t, tab, "__preempt_count"): le.AppendUint32(nil, 0x80000100),
		task + m["comm"].Offset:                   []byte("kworker/0:1\x00garbage"),
		task + m["pid"].Offset:                    le.AppendUint32(nil, 23),
	}
	p := fake.Program{States: fake.Linear(0x1000, 4), End: fake.Hang}
	p.States[0].Mem = mem

	for _, tc := range []struct {
		name string
		syms *symbols.Table
		want *compare.Task
		err  error
	}{
		{"dwarf", tab, &compare.Task{CPU: 0, Comm: "kworker/0:1", PID: 23, Context: compare.ContextSoftIRQ, PreemptCount: 0x100, Addr: task}, nil},
		{"no dwarf", taskELF(t), nil, guest.ErrNoTaskTypes},
		{"no symbols", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, mc, err := fake.New(p)
			if err != nil {
				t.Fatal(err)
			}
			g, err := guest.New(0, "", scenario.Guest{Label: "good", Accel: scenario.AccelTCG}, tg, mc, tc.syms, fake.Timeouts())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := g.Close(context.Background()); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			got, err := g.Task(bounded(t, 5*time.Second))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("task %+v, want %+v", got, tc.want)
			}
		})
	}
}
