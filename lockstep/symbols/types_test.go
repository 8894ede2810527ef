package symbols

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"unsafe"
)

// goTask mirrors testdata/task.c's struct task_struct on x86_64, so the
// expected offsets come from the Go compiler, not from this test.
type goTask struct {
	state uint32
	stack uintptr
	tasks [2]uintptr
	anon  struct {
		prio int32
		name uintptr
	}
	anon2 struct {
		pad  [3]int64
		pid  int32
		tgid int32
	}
	named struct {
		children [2]uintptr
		comm     [16]byte
	}
	comm [16]byte
}

func buildTask(t *testing.T, extra ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc not installed (Debian package gcc), needed to build testdata/task.c: %v", err)
	}
	out := filepath.Join(t.TempDir(), "task.elf")
	args := append([]string{"-O0", "-nostdlib", "-static", "-no-pie"}, extra...)
	if b, err := exec.Command(gcc, append(args, "testdata/task.c", "-o", out)...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

func TestStructMembers(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the mirror struct assumes a 64-bit host like the gcc target")
	}
	var g goTask
	elf := buildTask(t, "-g")
	tab, err := Load(elf)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		strct, member string
		want          Member
	}{
		{"task_struct", "comm", Member{uint64(unsafe.Offsetof(g.comm)), 16}},
		{"task_struct", "pid", Member{uint64(unsafe.Offsetof(g.anon2) + unsafe.Offsetof(g.anon2.pid)), 4}},
		{"task_struct", "tgid", Member{uint64(unsafe.Offsetof(g.anon2) + unsafe.Offsetof(g.anon2.tgid)), 4}},
		{"task_struct", "prio", Member{uint64(unsafe.Offsetof(g.anon) + unsafe.Offsetof(g.anon.prio)), 4}},
		{"task_struct", "named.comm", Member{uint64(unsafe.Offsetof(g.named) + unsafe.Offsetof(g.named.comm)), 16}},
		{"pcpu_hot", "current_task", Member{0, 8}},
		{"pcpu_hot", "preempt_count", Member{8, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.strct+"."+tt.member, func(t *testing.T) {
			m, err := tab.StructMembers(tt.strct, tt.member)
			if err != nil {
				t.Fatal(err)
			}
			if got := m[tt.member]; got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := tab.StructMembers("task_struct", "no_such"); !errors.Is(err, ErrNoType) {
		t.Errorf("missing member: err %v, want ErrNoType", err)
	}
	if _, err := tab.StructMembers("mm_struct", "pgd"); !errors.Is(err, ErrNoType) {
		t.Errorf("missing struct: err %v, want ErrNoType", err)
	}
	// A second lookup comes from the Table's cache, with the same answer.
	if m, err := tab.StructMembers("task_struct", "comm"); err != nil || m["comm"].Offset != uint64(unsafe.Offsetof(g.comm)) {
		t.Errorf("cached lookup: %v %v", m, err)
	}
}

func TestStructMembersNoDWARF(t *testing.T) {
	tab, err := Load(buildTask(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.StructMembers("task_struct", "comm"); !errors.Is(err, ErrNoDWARF) {
		t.Errorf("err %v, want ErrNoDWARF", err)
	}
}
