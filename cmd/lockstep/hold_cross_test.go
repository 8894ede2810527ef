package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestHoldCrossGDBMultiarch holds an aarch64 pair on two CPU models
// (cortex-a57 against max, whose target description adds SVE) at the
// localised mrs, and runs the commands lockstep prints exactly as a user
// pastes them: each must be gdb-multiarch with `set architecture aarch64`,
// and the PC it reads must be the report's, at an mrs; the script must
// open both sides in one gdb-multiarch. Then SIGINT, and nothing is left
// (issues 10 and 11).
func TestHoldCrossGDBMultiarch(t *testing.T) {
	qemutest.CrossGuest(t, "aarch64", "deep-1e3")
	if _, err := exec.LookPath("gdb-multiarch"); err != nil {
		t.Skipf("gdb-multiarch not installed (Debian package gdb-multiarch): %v", err)
	}
	bin := buildLockstep(t)
	runDir := qemutest.ShortDir(t)
	outDir := t.TempDir()
	h := startHold(t, bin, runDir, "run", "--hold", "--run-dir", runDir, "-o", outDir, "--format", "json",
		scenarioPath(t, "aarch64-deep.yaml"))
	h.waitFor(t, "lockstep: held at the localised instruction", 120*time.Second)
	h.waitFor(t, "holding until Ctrl-C", 5*time.Second)
	text := h.stderr.String()
	if strings.Contains(text, "WARNING") {
		t.Errorf("a side is not at the reported PC:\n%s", text)
	}
	data, err := os.ReadFile(filepath.Join(outDir, "aarch64-deep.json"))
	if err != nil {
		t.Fatalf("report not written before holding: %v", err)
	}
	var res lockstep.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	var want [2]compare.Location
	step := 0
	for _, d := range res.Divergences {
		if d.Kind == compare.KindInstruction {
			want, step = d.PC, d.Step
			break
		}
	}
	// The hold counts as the report does.
	if w := fmt.Sprintf("held at the localised instruction, step %d after sync point 1 (deep_start), before it executes", step); !strings.Contains(text, w) {
		t.Errorf("hold message does not say %q:\n%s", w, text)
	}
	if want[0].Addr == 0 || want[1].Addr == 0 {
		t.Fatalf("the report localised no instruction:\n%s", data)
	}

	var cmds []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "gdb") && strings.Contains(l, "target remote") {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) != 2 {
		t.Fatalf("%d gdb commands printed, want one per side:\n%s", len(cmds), text)
	}
	for i, c := range cmds {
		if !strings.HasPrefix(c, "gdb-multiarch -ex 'set architecture aarch64' -ex 'target remote ") {
			t.Errorf("side %d: command %q, want gdb-multiarch with set architecture aarch64", i, c)
		}
		out := gdbShell(t, c+" -nx -batch -ex 'p/x $pc' -ex 'x/i $pc' -ex disconnect")
		pcs := pcsIn(t, out)
		if len(pcs) != 1 || pcs[0] != want[i].Addr || !regexp.MustCompile(`=> 0x[0-9a-f]+ <[^>]+>:\s+mrs\s`).MatchString(out) {
			t.Errorf("side %d: the printed command reads pc %#x, the report gives %#x (%s), want at an mrs:\n%s", i, pcs, want[i].Addr, want[i], out)
		}
	}
	m := regexp.MustCompile(`(gdb\S*) -x (\S+)`).FindStringSubmatch(text)
	if m == nil || m[1] != "gdb-multiarch" {
		t.Fatalf("no gdb-multiarch script announced:\n%s", text)
	}
	out := gdbShell(t, m[1]+" -nx -batch -x "+m[2]+" -ex 'p/x $pc' -ex 'inferior 2' -ex 'p/x $pc' -ex disconnect")
	if pcs := pcsIn(t, out); len(pcs) != 2 || pcs[0] != want[0].Addr || pcs[1] != want[1].Addr {
		t.Errorf("through the script gdb-multiarch reads pcs %#x, want %#x and %#x:\n%s", pcs, want[0].Addr, want[1].Addr, out)
	}

	if err := h.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, text := h.exit(t, 60*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGINT, want the run's own 0:\n%s", code, text)
	}
	qemutest.NoQEMUUnder(t, runDir)
	if left, _ := os.ReadDir(runDir); len(left) > 0 {
		t.Errorf("run directory %s left behind: %v", runDir, left)
	}
}

// gdbShell runs a printed gdb command line through sh, as pasted.
func gdbShell(t *testing.T, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

// pcsIn returns every `p/x $pc` value in gdb's output.
func pcsIn(t *testing.T, out string) []uint64 {
	t.Helper()
	var pcs []uint64
	for _, m := range pcRE.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseUint(m[1], 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, v)
	}
	return pcs
}
