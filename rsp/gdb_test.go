package rsp

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// gdbCompared are the registers checked against gdb's "info registers".
var gdbCompared = strings.Fields(`rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags
	cs ss ds es fs gs fs_base gs_base k_gs_base cr0 cr2 cr3 cr4 cr8 efer`)

// TestCrossCheckWithGDB stops the guest at checksum with this client, reads
// the registers, closes the socket without detaching (QEMU stays paused),
// then lets real gdb attach and compares its "info registers".
func TestCrossCheckWithGDB(t *testing.T) {
	gdb := qemutest.RequireGDB(t)
	kernel := qemutest.Guest(t, "demo-good")
	vm := startQEMU(t, "tcg", kernel)
	c := vm.dial(t)
	ctx := testCtx(t)
	breakAt(t, c, kernel, "checksum")
	for i := 0; i < 5; i++ { // into the body, so more registers are live
		if _, err := c.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ours, err := c.ReadRegisterSet(ctx, gdbCompared...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Give a resumed VM every chance to move on before gdb looks.
	time.Sleep(300 * time.Millisecond)

	gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := []string{"-batch", "-nx", "-ex", "set architecture i386:x86-64", "-ex", "target remote " + vm.sock,
		"-ex", "info registers " + strings.Join(gdbCompared, " "), "-ex", "disconnect"}
	out, err := exec.CommandContext(gctx, gdb, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	theirs := map[string]uint64{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "0x") {
			continue
		}
		v, err := strconv.ParseUint(f[1][2:], 16, 64)
		if err != nil {
			t.Fatalf("gdb line %q: %v", line, err)
		}
		theirs[f[0]] = v
	}
	for _, name := range gdbCompared {
		g, ok := theirs[name]
		if !ok {
			t.Errorf("gdb printed no %s:\n%s", name, out)
			continue
		}
		u, _ := ours[name].Uint64()
		if u != g {
			t.Errorf("%s: ours %s, gdb %#x", name, ours[name].Hex(), g)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("gdb output:\n%s", out)
	}
	// The VM stayed stopped: rip is still where we left it, and the guest,
	// which exits within milliseconds when running, is still there.
	if _, gone := vm.exited(0); gone {
		t.Error("QEMU exited: the VM ran after the client closed")
	}
}
