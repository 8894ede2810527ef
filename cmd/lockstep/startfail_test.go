package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestStartFailureSaidOnce runs a scenario whose side b passes QEMU an
// unknown CPU model through args (which validate does not check), so
// QEMU refuses to start. QEMU's own message comes first, and it reaches
// the terminal once: the report shows it, and stderr, when it is the same
// terminal or pipe, only points at it. Written apart, each stream has it
// once.
func TestStartFailureSaidOnce(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	kernel := qemutest.Guest(t, "demo-good")
	sc := writeScenario(t, "start.yaml", "name: start\nguests:\n  defaults: {kernel: KERNEL, arch: x86_64}\n  a: {}\n"+
		"  b: {args: [-cpu, qemu65]}\nlocalize: {enabled: false}\nsync:\n  - break: kmain\n", kernel)
	const want = "unable to find CPU model 'qemu65'"

	// One file for both streams, as a terminal or 2>&1 is.
	both, err := os.Create(filepath.Join(t.TempDir(), "both"))
	if err != nil {
		t.Fatal(err)
	}
	defer both.Close()
	code := run(context.Background(), []string{"run", "--run-dir", t.TempDir(), sc}, streams{both, both})
	data, err := os.ReadFile(both.Name())
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if code != exitInfra {
		t.Errorf("status %d, want %d:\n%s", code, exitInfra, text)
	}
	if n := strings.Count(text, want); n != 1 {
		t.Errorf("QEMU's message appears %d times, want once:\n%s", n, text)
	}
	if i, j := strings.Index(text, want), strings.Index(text, "connection"); j >= 0 && j < i {
		t.Errorf("QEMU's message is behind what lockstep saw:\n%s", text)
	}
	if !strings.Contains(text, "lockstep: the run failed: see the error line of the report above") {
		t.Errorf("stderr does not point at the report's error:\n%s", text)
	}

	// Apart: the report on stdout and the error on stderr, once each.
	code, out, errs := cli(t, "run", "--run-dir", t.TempDir(), sc)
	if code != exitInfra || strings.Count(out, want) != 1 || strings.Count(errs, want) != 1 || !strings.HasPrefix(errs, "lockstep: guest b") {
		t.Errorf("status %d; stdout has QEMU's message %d times, stderr %d times (want once each):\n%s\n--\n%s",
			code, strings.Count(out, want), strings.Count(errs, want), out, errs)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}

// TestRunRefusesUnknownCPU checks that lockstep run refuses a cpu its QEMU
// does not list with exit 2, as validate does, and starts nothing.
func TestRunRefusesUnknownCPU(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	kernel := qemutest.Guest(t, "demo-good")
	sc := writeScenario(t, "cpu.yaml", "name: cpu\nguests:\n  defaults: {kernel: KERNEL, arch: x86_64}\n  a: {}\n"+
		"  b: {cpu: qemu65}\nsync:\n  - break: kmain\n", kernel)
	runDir := t.TempDir()
	code, out, errs := cli(t, "run", "--run-dir", runDir, sc)
	if code != exitUsage || out != "" || !strings.Contains(errs, `CPU model "qemu65" (did you mean qemu64?)`) {
		t.Errorf("status %d, stdout %q, stderr %q; want 2, nothing, the CPU model", code, out, errs)
	}
	if ents, _ := os.ReadDir(runDir); len(ents) > 0 {
		t.Errorf("run directory made: %v", ents)
	}
}
