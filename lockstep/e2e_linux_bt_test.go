//go:build e2e_linux

package lockstep_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// gdbFrame is one line of gdb's bt: "#1  0x... in do_pre_smp_initcalls ()
// at init/main.c:1412".
var gdbFrame = regexp.MustCompile(`^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+) \(.*?(?: at (\S+):(\d+))?$`)

// btFrame is a frame as gdb prints it: inlined calls are frames of their own.
type btFrame struct {
	Func string
	File string // base name
	Line int
}

func (f btFrame) String() string { return fmt.Sprintf("%s at %s:%d", f.Func, f.File, f.Line) }

// expand turns our frames (outermost first, inlined calls inside each
// Location) into gdb's order: innermost first, one frame per inlined call.
func expand(frames []compare.Frame) []btFrame {
	var out []btFrame
	for i := len(frames) - 1; i >= 0; i-- {
		l := frames[i].Location
		file, line := l.File, l.Line
		for _, in := range l.Inlined {
			out = append(out, btFrame{in.Function, path.Base(file), line})
			file, line = in.File, in.Line
		}
		out = append(out, btFrame{l.Symbol, path.Base(file), line})
	}
	return out
}

// TestLinuxE2EBacktraceGDB stops each Debian kernel at the
// LINUX_INITCALL_HIT-th do_one_initcall with lockstep's guest, takes its
// backtrace, closes the gdbstub connection without resuming, and lets real
// gdb (with the same vmlinux) attach to the same paused QEMU and print bt.
// The two must agree frame for frame: function, inlined calls, file and
// line.
func TestLinuxE2EBacktraceGDB(t *testing.T) {
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
			ours, rdi := ourBacktrace(t, kernel, vmlinux, hit)
			theirs, grdi := gdbBacktrace(t, gdb, vmlinux)
			t.Logf("ours (rdi %#x):\n%s", rdi, render(ours))
			t.Logf("gdb (rdi %#x):\n%s", grdi, render(theirs))
			if rdi != grdi {
				t.Errorf("gdb sees rdi %#x, we saw %#x: not the same stop", grdi, rdi)
			}
			if len(ours) != len(theirs) {
				t.Errorf("%d frames, gdb has %d", len(ours), len(theirs))
			}
			for i := range min(len(ours), len(theirs)) {
				if ours[i] != theirs[i] {
					t.Errorf("frame #%d: ours %s, gdb %s", i, ours[i], theirs[i])
				}
			}
		})
	}
}

func render(fs []btFrame) string {
	var b strings.Builder
	for i, f := range fs {
		fmt.Fprintf(&b, "  #%d %s\n", i, f)
	}
	return b.String()
}

// ourBacktrace boots kernel, stops at the hit-th do_one_initcall and
// returns lockstep's backtrace there, in gdb's order, and rdi (the
// initcall). The QEMU is left paused with its gdbstub free for gdb.
func ourBacktrace(t *testing.T, kernel, vmlinux string, hit int) ([]btFrame, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	s := bootToInitcall(t, ctx, kernel, vmlinux, hit)
	t.Cleanup(func() { gdbVM = "" })
	gdbVM = s.sock
	start := time.Now()
	frames, note, err := s.g.Backtrace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backtrace in %s (tables loaded on first use), note %q", time.Since(start).Round(time.Millisecond), note)
	for _, f := range frames {
		t.Logf("  %-4s %s", f.How, f.Location)
	}
	regs, err := s.g.Registers(ctx, "rdi")
	if err != nil {
		t.Fatal(err)
	}
	rdi, _ := regs["rdi"].Uint64()
	s.release(t, ctx)
	return expand(frames), rdi
}

// gdbVM is the gdbstub socket of the QEMU ourBacktrace left paused.
var gdbVM string

// gdbBacktrace attaches gdb to the paused QEMU and parses its bt.
func gdbBacktrace(t *testing.T, gdb, vmlinux string) ([]btFrame, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, gdb, "-batch", "-nx", "-ex", "set pagination off",
		"-ex", "file "+vmlinux, "-ex", "target remote "+gdbVM, "-ex", "bt", "-ex", "p/x $rdi", "-ex", "disconnect").CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	t.Logf("gdb took %s", time.Since(start).Round(time.Millisecond))
	var frames []btFrame
	var rdi uint64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "$1 = 0x"); ok {
			rdi, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			continue
		}
		m := gdbFrame.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[3] == "??" && m[2] != "" {
			if pc, err := strconv.ParseUint(m[2][2:], 16, 64); err == nil && pc == 0 {
				// gdb's "#5 0x0000000000000000 in ?? ()": it has no CFI for
				// ret_from_fork and reads the zero ip of the kernel thread's
				// pt_regs as one more frame. That is the end of the stack,
				// where lockstep stops (a return address outside text).
				t.Logf("gdb's frame #%s is pc 0 (end of the kernel thread's stack): not a frame, left out", m[1])
				continue
			}
		}
		f := btFrame{Func: m[3], File: path.Base(m[4])}
		if m[4] == "" {
			f.File = "."
		}
		f.Line, _ = strconv.Atoi(m[5])
		frames = append(frames, f)
	}
	if len(frames) == 0 {
		t.Fatalf("no frames in gdb's output:\n%s", out)
	}
	t.Logf("gdb output:\n%s", out)
	return frames, rdi
}
