package guest_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
)

// TestBacktraceMatchesGDBOnQEMU stops the demo-nofp guest (demo.c built
// without frame pointers) at each stop under QEMU, takes lockstep's
// backtrace, closes the gdbstub connection without resuming, and lets real
// gdb attach to the same paused QEMU and print bt: the frames must agree
// (functions, inlined calls, caller lines), every caller found by CFI.
func TestBacktraceMatchesGDBOnQEMU(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64", "tcg")
	gdb := qemutest.RequireGDB(t)
	elf := qemutest.Guest(t, "demo-nofp")
	tab, err := symbols.Load(elf)
	if err != nil {
		t.Fatal(err)
	}
	for _, stop := range []string{"leaf", "path_b", "checksum"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			frames, note, theirs, out := backtraceVsGDB(t, gdb, qemu.Spec{Arch: "x86_64", Machine: "pc", CPU: "qemu64", Accel: "tcg", Memory: "64M",
				Kernel: elf, Args: []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=4"}}, tab, stop)
			ours := expandFrames(frames)
			// The stopped frame's line: see TestBacktraceCFI.
			if len(ours) > 0 && len(theirs) > 0 {
				ours[0], theirs[0] = strings.Fields(ours[0])[0], strings.Fields(theirs[0])[0]
			}
			if strings.Join(ours, "\n") != strings.Join(theirs, "\n") || note != "" {
				t.Errorf("at %s:\n ours %q (note %q)\n  gdb %q\ngdb output:\n%s", stop, ours, note, theirs, out)
			}
			// Outermost first: the last frame is the pc; long_entry
			// (boot.S, no CFI) is found from kmain's CFI.
			for _, f := range frames[:len(frames)-1] {
				if f.How != guest.HowCFI {
					t.Errorf("frame %s found by %q, want cfi", f.Location, f.How)
				}
			}
			if testing.Verbose() {
				t.Logf("ours %q\ngdb output:\n%s", ours, out)
			}
		})
	}
}
