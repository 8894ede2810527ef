package lockstep_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// validateScenario writes a scenario whose sides run kernels a and b with
// the given guest defaults, validates it and returns the error.
func validateScenario(t *testing.T, defaults, a, b string) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "v.yaml")
	body := "name: v\nguests:\n  defaults: {" + defaults + "}\n  a: {label: one, kernel: " + a + "}\n  b: {label: two, kernel: " + b + "}\nsync:\n  - break: kmain\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := lockstep.Validate(p)
	return err
}

// TestValidateELFMachine checks that a kernel built for another
// architecture than the side's arch is a validation error.
func TestValidateELFMachine(t *testing.T) {
	good := qemutest.Guest(t, "demo-good")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(data[18:], 183) // e_machine = EM_AARCH64
	arm := filepath.Join(t.TempDir(), "arm.elf")
	if err := os.WriteFile(arm, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := validateScenario(t, "arch: x86_64", good, good); err != nil {
		t.Fatalf("x86_64 kernel with arch x86_64: %v", err)
	}
	err = validateScenario(t, "arch: x86_64", good, arm)
	if err == nil {
		t.Fatal("aarch64 kernel with arch x86_64 validated")
	}
	for _, w := range []string{"v.yaml:", "guest b", "arm.elf is built for aarch64, but arch is x86_64"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if strings.Contains(err.Error(), "guest a") {
		t.Errorf("side a blamed: %v", err)
	}
}

// TestValidateCPUAndMachine checks the cpu and machine of each side
// against what the QEMU binary lists, with a suggestion.
func TestValidateCPUAndMachine(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good := qemutest.Guest(t, "demo-good")
	if err := validateScenario(t, "arch: x86_64, cpu: \"qemu64,+sse4.2\", machine: pc", good, good); err != nil {
		t.Fatalf("qemu64 on pc: %v", err)
	}
	err := validateScenario(t, "arch: x86_64, cpu: qemu65, machine: pcc", good, good)
	if err == nil {
		t.Fatal("cpu qemu65, machine pcc validated")
	}
	for _, w := range []string{`CPU model "qemu65" (did you mean qemu64?)`, `machine type "pcc" (did you mean pc?)`, "guest a", "guest b", "qemu-system-x86_64"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}
