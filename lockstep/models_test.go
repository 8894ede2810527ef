package lockstep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// cpuScenario loads a demo-good scenario whose side b runs cpu.
func cpuScenario(t *testing.T, cpu string) *scenario.Scenario {
	t.Helper()
	good := qemutest.Guest(t, "demo-good")
	p := filepath.Join(t.TempDir(), "cpu.yaml")
	body := fmt.Sprintf("name: cpu\nguests:\n  defaults: {kernel: %s, arch: x86_64}\n  a: {cpu: qemu64}\n  b: {cpu: %s}\n"+
		"localize: {enabled: false}\nsync:\n  - break: kmain\n", good, cpu)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestRunRefusesUnknownCPU checks that run, like validate, refuses a CPU
// model the QEMU binary does not list, as a scenario error, before it
// makes a run directory or starts a QEMU.
func TestRunRefusesUnknownCPU(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	sc := cpuScenario(t, "qemu65")
	runDir := t.TempDir()
	_, err := Run(context.Background(), sc, Options{RunDir: runDir})
	var se *ScenarioError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `CPU model "qemu65" (did you mean qemu64?)`) || !strings.Contains(err.Error(), "guest b") {
		t.Fatalf("err = %v, want a scenario error naming qemu65 on guest b", err)
	}
	if ents, _ := os.ReadDir(runDir); len(ents) > 0 {
		t.Errorf("run directory made before refusing: %v", ents)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}

// TestRunBadCPUStderrFirst starts a QEMU that refuses its CPU model (the
// check above skipped): the run's error is an infrastructure failure that
// opens with QEMU's own message, said once, with what lockstep saw of it
// going away after.
func TestRunBadCPUStderrFirst(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	sc := cpuScenario(t, "qemu65")
	res, err := Run(context.Background(), sc, Options{RunDir: t.TempDir(), noModelCheck: true})
	if err == nil {
		t.Fatal("ran with cpu qemu65")
	}
	var se *ScenarioError
	if errors.As(err, &se) || !errors.Is(err, ErrInfrastructure) {
		t.Fatalf("err = %v, want an infrastructure failure", err)
	}
	msg := err.Error()
	const want = "unable to find CPU model 'qemu65'"
	if n := strings.Count(msg, want); n != 1 {
		t.Errorf("QEMU's message appears %d times, want once: %s", n, msg)
	}
	if i, j := strings.Index(msg, want), strings.Index(msg, "qmp"); j >= 0 && j < i {
		t.Errorf("QEMU's message comes after what lockstep saw: %s", msg)
	}
	if res == nil || strings.Count(res.Error, want) != 1 {
		t.Errorf("result error %q, want QEMU's message once", res.Error)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}
