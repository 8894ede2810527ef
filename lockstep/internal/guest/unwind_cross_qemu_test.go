package guest_test

import (
	"context"
	"os/exec"
	"path"
	"strings"
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

// backtraceVsGDB starts spec, runs it to stop, takes lockstep's backtrace
// there, closes the gdbstub connection without resuming, lets gdb attach to
// the same paused QEMU and print bt, and returns both (gdb's as "function
// file:line", innermost first) with gdb's output.
func backtraceVsGDB(t *testing.T, gdb string, spec qemu.Spec, tab *symbols.Table, stop string) (frames []compare.Frame, note string, theirs []string, out []byte) {
	t.Helper()
	inst := qemutest.Start(t, spec)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := rsp.Dial(ctx, "unix", inst.GDBSocket)
	if err != nil {
		t.Fatal(err)
	}
	g, err := guest.New(0, "a", scenario.Guest{Arch: spec.Arch}, c, nil, tab, guest.Timeouts{})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := g.Resolve(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Insert(ctx, g.BPKind, addr); err != nil {
		t.Fatal(err)
	}
	st, err := g.Cont(ctx)
	if err != nil || st.Exited() {
		t.Fatalf("continue to %s: %v (exited %v)", stop, err, st.Exited())
	}
	frames, note, err = g.Backtrace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // QEMU stays paused
		t.Fatal(err)
	}
	out, err = exec.CommandContext(ctx, gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "file "+spec.Kernel,
		"-ex", "target remote "+inst.GDBSocket, "-ex", "bt", "-ex", "disconnect").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", gdb, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if m := gdbBTLine.FindStringSubmatch(line); m != nil {
			theirs = append(theirs, m[1]+" "+path.Base(m[2])+":"+m[3])
		}
	}
	return frames, note, theirs, out
}

// TestCrossBacktraceMatchesGDBMultiarch stops the demo-good guest of
// aarch64, riscv64 and s390x (testdata/guests/<arch>/, built with frame
// pointers and .debug_frame) at the demo's sync points under QEMU (TCG),
// takes lockstep's backtrace, closes the gdbstub connection without
// resuming, and lets gdb-multiarch attach to the same paused QEMU and print
// bt: the functions and caller lines must agree.
func TestCrossBacktraceMatchesGDBMultiarch(t *testing.T) {
	gdb, err := exec.LookPath("gdb-multiarch")
	if err != nil {
		t.Skipf("gdb-multiarch not installed (Debian package gdb-multiarch): %v", err)
	}
	for _, spec := range []qemu.Spec{
		{Arch: "aarch64", Machine: "virt", CPU: "cortex-a57"},
		{Arch: "riscv64", Machine: "virt", CPU: "rv64", BIOS: "none"},
		{Arch: "s390x", Machine: "s390-ccw-virtio", CPU: "qemu"},
	} {
		t.Run(spec.Arch, func(t *testing.T) {
			elf := qemutest.CrossGuest(t, spec.Arch, "demo-good")
			tab, err := symbols.Load(elf)
			if err != nil {
				t.Fatal(err)
			}
			for _, stop := range []string{"leaf", "path_b", "checksum", "marker"} {
				t.Run(stop, func(t *testing.T) {
					spec := spec
					spec.Accel, spec.Memory, spec.Kernel = "tcg", "128M", elf
					frames, note, theirs, out := backtraceVsGDB(t, gdb, spec, tab, stop)
					ours := expandFrames(frames)
					if len(ours) > 0 && len(theirs) > 0 {
						ours[0], theirs[0] = strings.Fields(ours[0])[0], strings.Fields(theirs[0])[0]
					}
					if len(theirs) < 3 || strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
						t.Errorf("at %s:\n ours %q (note %q)\n  gdb %q\ngdb output:\n%s", stop, ours, note, theirs, out)
					}
				})
			}
		})
	}
}
